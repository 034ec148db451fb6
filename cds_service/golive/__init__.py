"""Go-live and monitoring (SPEC §6): silent mode, traffic marking and the vocabulary gaps a hook call
leaves behind. The shell around the pure pipeline: `evaluate` decides as always; what the EHR is
shown, what is counted and what is stored for the informaticist is decided here."""
