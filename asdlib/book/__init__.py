"""The book's layer: what a notebook page calls, so its code cells stay a few lines long.

A page's parameters cell holds papermill parameters; :func:`load_run` turns them into a spec and a
finished results store (running or resuming the grid when needed). The build decides the profile and
the data for every page at once: ``make book PROFILE=paper DATA_ROOT=~/mimii`` sets the environment
variables :data:`PROFILE_ENV` and :data:`DATA_ROOT_ENV`, which a page's ``profile = None`` and
``data_root = None`` defer to. Papermill passes ``-p machines '["fan"]'`` as a string; list
parameters accept JSON or YAML text.

The other functions compute what pages show and say, one module per page or group of pages; a page
calls them as ``book.<function>``:

- :mod:`~asdlib.book.parameters`: a page's parameters and the run they name;
- :mod:`~asdlib.book.text`: captions, where the numbers come from, numbers and tables as text;
- :mod:`~asdlib.book.table1`: Table 1, Figure 5 and the paper's claims;
- :mod:`~asdlib.book.how_sure`: *How sure can we be?*;
- :mod:`~asdlib.book.dipole`: *The dipole*;
- :mod:`~asdlib.book.more_mics`: *More microphones*;
- :mod:`~asdlib.book.anomaly_kinds`: *Spatial versus spectral anomalies*;
- :mod:`~asdlib.book.choices`: the *Choices* page;
- :mod:`~asdlib.book.reproduce`: *Reproduce* and *Running the grid on more machines*.
"""
from __future__ import annotations

from .parameters import (PROFILE_ENV, DATA_ROOT_ENV, DEFAULT_PROFILE, LIST_PARAMETERS, build_profile,
    build_data_root, parse_list, parse_overrides, merge_parameters, make_spec, page_machine, load_run)
from .text import (data_caption, score_name, signed, share, mean_interval_text, finite, caption,
    DISPLAY_NAMES, for_display, yes_no, and_join, intervals_overlap, seeds_interval_text)
from .table1 import (table1_frame, average_row_gap, table1_cell_text, best_dual_gain, table1_caption,
    dual_configurations_text, table1_summary, figure5_reading, gain_reading_sentence, CHANCE_AUC,
    CHANCE_MARGIN_POINTS)
from .how_sure import (seed_spread, paired_comparisons, paired_interval_scope, paired_table, best_of,
    how_sure_summary, delong_reading)
from .dipole import (OPPOSITE_PAIRS, pairs_spec, sweep_skip_reason, pairs_table, pair_gains_towards_machines,
    cancelling_pairs_reading, dipole_gains_at)
from .more_mics import (CHANNEL_SETS, CHANNEL_SETS_HINT, parse_channel_sets, channel_sets_text,
    channels_spec, channels_reading, channels_table)
from .anomaly_kinds import (auc_by_anomaly_kind, KIND_GAP_POINTS, gain_by_anomaly_kind, config_names,
    seed_gains, at_chance, all_seeds_agree_by_chance, anomaly_kind_rule, anomaly_kind_verdict,
    anomaly_kind_reading)
from .choices import (LEAK_SNRS, leak_specs, twins_across_split, leak_verdict, leak_comparison,
    baseline_input_comparison)
from .reproduce import (build_specs, training_projection, grid_cost_projection)

__all__ = [
    "PROFILE_ENV",
    "DATA_ROOT_ENV",
    "DEFAULT_PROFILE",
    "LIST_PARAMETERS",
    "build_profile",
    "build_data_root",
    "parse_list",
    "parse_overrides",
    "merge_parameters",
    "make_spec",
    "page_machine",
    "load_run",
    "data_caption",
    "score_name",
    "signed",
    "share",
    "mean_interval_text",
    "finite",
    "caption",
    "DISPLAY_NAMES",
    "for_display",
    "yes_no",
    "and_join",
    "intervals_overlap",
    "seeds_interval_text",
    "table1_frame",
    "average_row_gap",
    "table1_cell_text",
    "best_dual_gain",
    "table1_caption",
    "dual_configurations_text",
    "table1_summary",
    "figure5_reading",
    "gain_reading_sentence",
    "CHANCE_AUC",
    "CHANCE_MARGIN_POINTS",
    "seed_spread",
    "paired_comparisons",
    "paired_interval_scope",
    "paired_table",
    "best_of",
    "how_sure_summary",
    "delong_reading",
    "OPPOSITE_PAIRS",
    "pairs_spec",
    "sweep_skip_reason",
    "pairs_table",
    "pair_gains_towards_machines",
    "cancelling_pairs_reading",
    "dipole_gains_at",
    "CHANNEL_SETS",
    "CHANNEL_SETS_HINT",
    "parse_channel_sets",
    "channel_sets_text",
    "channels_spec",
    "channels_reading",
    "channels_table",
    "auc_by_anomaly_kind",
    "KIND_GAP_POINTS",
    "gain_by_anomaly_kind",
    "config_names",
    "seed_gains",
    "at_chance",
    "all_seeds_agree_by_chance",
    "anomaly_kind_rule",
    "anomaly_kind_verdict",
    "anomaly_kind_reading",
    "LEAK_SNRS",
    "leak_specs",
    "twins_across_split",
    "leak_verdict",
    "leak_comparison",
    "baseline_input_comparison",
    "build_specs",
    "training_projection",
    "grid_cost_projection",
]
