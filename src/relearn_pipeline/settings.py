"""Project settings: config loader patterns and hooks (kedro-mlflow registers its own hook)."""

from kedro.config import OmegaConfigLoader

from relearn_pipeline.hooks import ParameterValidationHook, RunNamingHook
from relearn_pipeline.tracking_privacy import PersonalDataMaskingHook

HOOKS = (RunNamingHook(), PersonalDataMaskingHook(), ParameterValidationHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Every pipeline keeps its own catalog_<pipeline>.yml and parameters_<pipeline>.yml.
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
    # An environment (conf/local, conf/bench_privacy) overrides single parameters, e.g. only
    # `finetune.epochs`, and keeps the rest of the block from base; catalog entries are replaced whole.
    "merge_strategy": {"parameters": "soft"},
}
