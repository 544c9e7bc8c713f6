"""Preset search: the narrow model sizes whose FLOP shares and savings match base's, in
closed form (``search``; ``diffbench preset-search``, ``diffbench info --proportions``)."""
