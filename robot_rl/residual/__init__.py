"""Learning on top of a frozen base policy: the base interface and the env view that shows its proposals."""
