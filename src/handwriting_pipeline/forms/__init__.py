"""The geometry of a form, no text rules and no models.

What lives here: the form spec's form-facing side (:mod:`.spec`: load a spec, register a page
the way it says, its boxes on an image), page registration and the top-section crop of the HSF
form (:mod:`.registration`), the handwriting boxes on a crop (:mod:`.boxes`), the two
handwritten lines cut for a recognizer (:mod:`.lines`), the ink checks that tell a usable crop
from a blank or dark one (:mod:`.ink`) and a command that draws a spec's boxes over a scan
(:mod:`.draw`). Used by curation, the engines, the field reader, Donut and digitize.

Floor 1. May import: floor 0 — the form spec (:mod:`handwriting_pipeline.fields.formspec`);
otherwise numpy, PIL, OpenCV only.
"""
