"""Node readers and probes; never imports Textual."""
