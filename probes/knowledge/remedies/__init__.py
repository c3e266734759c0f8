"""The commands nodedoc prints to fix what a probe found, built from the node's own paths, ids and names,
each saying whether it disrupts running pods and which lab test runs it as printed. Probes import these;
they read nothing from the node themselves."""
