from relearn_pipeline.datasets.qa_records import QARecordsDataset  # noqa: F401
