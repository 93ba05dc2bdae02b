"""python -m handwriting_pipeline.review - review a digitize run, export it, Label Studio.

    python -m handwriting_pipeline.review RUN [--host 127.0.0.1] [--port 8765] [--reviewer NAME]
    python -m handwriting_pipeline.review export RUN [--out DIR] [--training-folder DIR]
    python -m handwriting_pipeline.review labelstudio-export RUN [--out DIR] [--image-prefix URL]
    python -m handwriting_pipeline.review labelstudio-import RUN EXPORT.json

RUN is a digitize run folder (``data/08_reporting/digitize/latest`` is the newest). Its form (the
fields reviewed and exported, the Label Studio config) is the one its summary.json names, the HSF
form for older runs; ``--form NAME|SPEC.yml`` gives it when the run read a form that is not shipped.
Serving on another interface than 127.0.0.1 needs ``--allow-remote`` and is guarded by a token
(``--token``, or one is made and printed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

COMMANDS = ("serve", "export", "labelstudio-export", "labelstudio-import")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m handwriting_pipeline.review", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="the review page (default command)")
    serve.add_argument("run", help="digitize run folder")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--reviewer", default=None, help="name stored with every decision (default: your login)")
    serve.add_argument("--token", default=None, help="required from every request (made up when --allow-remote without one)")
    serve.add_argument("--allow-remote", action="store_true", help="allow a host other than 127.0.0.1 (token-guarded)")
    serve.add_argument("--store", default=None, help="corrections store (default: RUN/corrections.sqlite)")
    export = sub.add_parser("export", help="final forms.jsonl / forms.csv with each field's status")
    export.add_argument("run")
    export.add_argument("--out", default=None, help="folder (default: RUN/reviewed)")
    export.add_argument("--training-folder", default=None,
                        help="also write the reviewed forms as a labelled Donut folder (DIR/train/metadata.jsonl)")
    ls_out = sub.add_parser("labelstudio-export", help="Label Studio tasks with pre-annotations + labelling config")
    ls_out.add_argument("run")
    ls_out.add_argument("--out", default=None, help="folder (default: RUN/labelstudio)")
    ls_out.add_argument("--image-prefix", default="/data/local-files/?d=",
                        help="prefix of data.image (default: Label Studio's local file serving)")
    ls_in = sub.add_parser("labelstudio-import", help="Label Studio JSON export -> the corrections store")
    ls_in.add_argument("run")
    ls_in.add_argument("export", help="the JSON file Label Studio exported")
    for command in (serve, export, ls_out, ls_in):
        command.add_argument("--form", default=None,
                             help="the run's form: a shipped form's name or a spec file (default: what the run's "
                                  "summary.json names; the HSF form for older runs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv = ["serve", *argv]
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    from handwriting_pipeline.review.run import ReviewRun, RunFolderError

    try:
        if args.command == "serve":
            from handwriting_pipeline.review.app import serve

            serve(args.run, args.host, args.port, args.reviewer or getpass.getuser(), args.token, args.allow_remote,
                  args.store, args.form)
            return 0
        run = ReviewRun.open(args.run, args.form)
        if args.command == "export":
            from handwriting_pipeline.review.export import export_reviewed

            result = export_reviewed(run, run.store(), args.out)
            if args.training_folder:
                from handwriting_pipeline.review.training import write_training_folder

                result["training_forms"] = write_training_folder([run.folder], args.training_folder,
                                                                 form=args.form)
        elif args.command == "labelstudio-export":
            from handwriting_pipeline.review.export import write_labelstudio

            result = write_labelstudio(run, args.out, args.image_prefix)
        else:
            from handwriting_pipeline.review.export import import_labelstudio

            with open(args.export, encoding="utf-8") as handle:
                try:
                    exported = json.load(handle)
                except json.JSONDecodeError as err:
                    raise RunFolderError(f"{args.export}: not JSON ({err}); export the project from Label "
                                         "Studio as JSON") from err
            if not isinstance(exported, list):
                raise RunFolderError(f"{args.export}: expected a list of tasks (Label Studio's JSON export)")
            result = import_labelstudio(run, run.store(), exported)
    except RunFolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
