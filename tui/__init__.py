"""nodedoc's terminal side: the App, the CLI, shared widgets and the headless engines."""
