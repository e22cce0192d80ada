"""The `hrm-export build` pipeline: export → precision variants → TensorRT plans → verify → bench, composed from
the verbs (it sits above them, as the CLI does). TensorRT itself is `hrm_export.tensorrt`."""

DONE, SKIPPED, FAILED = "done", "SKIPPED", "FAILED"  # a step's status
