"""Inference backends behind one small interface (activate / infer / deactivate), as Polygraphy's runners.

Backends are imported lazily by name so that `import hrm_export` needs torch alone.
"""
