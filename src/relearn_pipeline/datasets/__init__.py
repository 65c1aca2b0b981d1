from relearn_pipeline.datasets.hf_model import CachedModel, HFModelDataset, ModelFingerprintDataset  # noqa: F401
from relearn_pipeline.datasets.mlflow_runs import MlflowRunsDataset  # noqa: F401
from relearn_pipeline.datasets.peft_adapter import AdapterArtifact, PeftAdapterDataset, UnlearnedAdapter, apply_adapter  # noqa: F401
from relearn_pipeline.datasets.qa_records import QARecordsDataset  # noqa: F401
