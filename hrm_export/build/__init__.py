"""TensorRT build: ONNX per module × precision → serialized plans, plus the whole `hrm-export build` pipeline.

TensorRT is imported only inside the functions that call it (`hrm_export.build.tensorrt`); everything else
here (options, shape checks, plan headers, ONNX Runtime TensorRT EP options) runs with torch and onnx alone.
"""
