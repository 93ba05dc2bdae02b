"""Project settings. https://docs.kedro.org/en/stable/kedro_project_setup/settings.html

Floor 9 (Kedro's entry points). May import: anything below (here: ``hooks``).
"""

from kedro.config import OmegaConfigLoader

from handwriting_pipeline.fields.formspec import data_root
from handwriting_pipeline.hooks import ProjectHooks

HOOKS = (ProjectHooks(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # ${form_data:${runtime_params:form,hsf_top}}: data/ for the HSF form, data/forms/<name> for another
    "custom_resolvers": {"form_data": data_root},
}
