"""The 'extract' pipeline: every enabled engine reads ``evaluation_forms``.

``check_extract_engines`` runs first and stops the run when an enabled paid engine lacks
credentials; then one node per method writes ``predictions_<method>``.
"""

from kedro.pipeline import Node, Pipeline

from handwriting_pipeline.pipelines.extract import nodes

COMMON = ["evaluation_forms", "params:extract"]


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'extract' pipeline."""
    check = Node(nodes.check_engines, ["params:extract", "extract_credentials"], "extract_engine_status",
                 name="check_extract_engines")
    per_engine = [
        Node(nodes.extract_rapidocr, [*COMMON, "extract_cache", "extract_engine_status"], "predictions_rapidocr",
             name="extract_rapidocr"),
        Node(nodes.extract_tesseract, [*COMMON, "extract_cache", "extract_engine_status"], "predictions_tesseract",
             name="extract_tesseract"),
        Node(nodes.extract_textract, [*COMMON, "extract_cache", "extract_engine_status", "extract_credentials"],
             "predictions_textract", name="extract_textract"),
        Node(nodes.extract_azure_form_recognizer,
             [*COMMON, "extract_cache", "extract_engine_status", "extract_credentials"],
             "predictions_azure_form_recognizer", name="extract_azure_form_recognizer"),
        Node(nodes.extract_recorded_textract, [*COMMON, "extract_engine_status"], "predictions_recorded_textract",
             name="extract_recorded_textract"),
        Node(nodes.extract_recorded_azure_form_recognizer, [*COMMON, "extract_engine_status"],
             "predictions_recorded_azure_form_recognizer", name="extract_recorded_azure_form_recognizer"),
        Node(nodes.extract_donut, ["evaluation_forms", "donut_model", "params:extract", "extract_cache",
                                   "extract_engine_status"], "predictions_donut", name="extract_donut"),
    ]
    return Pipeline([check, *per_engine], tags="extract")
