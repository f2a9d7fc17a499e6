"""Scale-out on Ray (the optional `scale` extra): sweeps, distributed collection and parallel evaluation."""
