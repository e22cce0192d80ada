"""`hrm-export verify`: the PyTorch reference vs a candidate engine on the same feeds, judged by the parity
comparator (`hrm_export.verify.bundle.verify_bundle`; the comparator is `hrm_export.core.parity`)."""
