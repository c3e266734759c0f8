"""One module per screen of the interactive troubleshooter."""
