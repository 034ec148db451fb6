"""CDS Hooks 2.0 service: ACR imaging advice for suspected post-dural-puncture headache."""

__version__ = "0.1.0"
