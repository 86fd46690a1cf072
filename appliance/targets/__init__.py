"""Where mock traffic may go: lab networks, verified targets, never link-local."""
