"""A run's folder: layout.py names its files and reads them (settings, data folder,
metrics, a grid's run names); state.py is what training writes there (checkpoints,
position, RNG state, the lock) and how a resume reconciles it after a kill."""
