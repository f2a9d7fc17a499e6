"""Dataset sources: each turns something that acted (a scripted expert, a bundle, a recorded robot) into `Episode`s.

One file per source; a new source is a new file with a function that returns `(PolicySpec, list[Episode])`.
"""
