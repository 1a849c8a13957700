"""The book's page parameters as papermill passes them (JSON text), and sentences and captions that must
follow the run's seeds and parameters rather than the defaults: asdlib.book's functions for them."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from asdlib import book


# -- machines and channel_sets as JSON text (papermill's -p) -------------------------------------------

@pytest.mark.parametrize("machines", ['["valve"]', "valve", ["valve"], ("valve",)])
def test_pairs_spec_reads_machines_as_papermill_passes_them(machines):
    spec = book.pairs_spec("smoke", machines=machines, seeds="[0, 1]")
    assert list(spec.machines) == ["valve"]
    assert list(spec.seeds) == [0, 1]


def test_pairs_spec_keeps_its_default_and_several_machines():
    assert list(book.pairs_spec("smoke").machines) == ["fan"]
    assert list(book.pairs_spec("smoke", machines='["fan", "valve"]').machines) == ["fan", "valve"]


def test_channels_spec_reads_machines_and_channel_sets_as_json_text():
    spec = book.channels_spec("smoke", machines='["pump"]', channel_sets='{"2": [4], "3": [4, 2]}', seeds="[0]")
    assert list(spec.machines) == ["pump"]
    assert [ms.name for ms in spec.model_specs()] == ["baseline-mic0", "dual-0-4-a1", "multi-0-4-2-a0.5-0.5"]


def test_channels_spec_defaults_to_the_pages_channel_sets():
    others = [ms.others for ms in book.channels_spec("smoke").model_specs()]
    assert others == [(), (4,), (4, 2, 6), (1, 2, 3, 4, 5, 6, 7)]


def test_parse_channel_sets_turns_json_keys_into_channel_counts_in_order():
    assert book.parse_channel_sets('{"3": [4, 2], "2": [4]}') == {2: [4], 3: [4, 2]}
    assert book.parse_channel_sets({2: [4]}) == {2: [4]}
    assert book.parse_channel_sets(None) == {2: [4], 4: [4, 2, 6], 8: [1, 2, 3, 4, 5, 6, 7]}


@pytest.mark.parametrize("bad", ['[4, 2]', '{"2": [4], "4": [4, 2]}', '{"2": [0]}', '{"2": [8]}', '{"3": [4, 4]}',
                                 '{"two": [4]}', '{"2": 4}', "{:", "{}"])
def test_parse_channel_sets_rejects_bad_values_in_one_line_naming_the_parameter(bad):
    with pytest.raises(ValueError) as err:
        book.parse_channel_sets(bad)
    message = str(err.value)
    assert message.startswith("channel_sets") and "\n" not in message
    assert "-p channel_sets '{\"2\": [4], \"3\": [4, 2]}'" in message


def test_channel_counts_and_sets_as_the_page_says_them():
    assert book.and_join(book.parse_channel_sets(None)) == "2, 4 and 8"
    assert book.and_join([2, 3]) == "2 and 3" and book.and_join([2]) == "2"
    assert book.channel_sets_text('{"2": [4], "3": [4, 2]}') == (
        "1: the baseline on mic 0; 2: mic 0 and its difference with mic 4; 3: mic 0 and its differences with mics 4, 2")


# -- the machine a data page shows ----------------------------------------------------------------------

def test_page_machine_defaults_to_the_first_chosen_machine():
    spec = book.make_spec("smoke", machines='["pump"]')
    assert book.page_machine(None, spec) == "pump"
    assert book.page_machine("pump", spec) == "pump"


def test_page_machine_not_among_machines_names_both_parameters_and_the_fix():
    spec = book.make_spec("smoke", machines='["pump"]')
    with pytest.raises(ValueError, match=r"machine='fan' is not among machines \['pump'\].*-p machine pump"):
        book.page_machine("fan", spec)


# -- why the dipole page's sweep is skipped -------------------------------------------------------------

def test_sweep_skip_reason_names_the_missing_fan_on_simulated_data():
    reason = book.sweep_skip_reason(book.make_spec("smoke", machines=["pump"]))
    assert "fan is not among machines (pump)" in reason and "simulated data" not in reason
    assert "-p machines '[\"fan\",\"pump\"]'" in reason


def test_sweep_skip_reason_on_real_data_and_none_when_it_can_run():
    assert "simulated data" in book.sweep_skip_reason(book.make_spec("smoke", data_root="/mimii", machines=["fan"]))
    assert book.sweep_skip_reason(book.make_spec("smoke", machines=["fan", "valve"])) is None


# -- intervals that are not there -----------------------------------------------------------------------

def test_seeds_interval_text_promises_an_interval_only_from_three_seeds():
    assert book.seeds_interval_text(3, " (in brackets)") == "mean over 3 seeds and its 95 % interval over seeds and test clips (in brackets)"
    two = book.seeds_interval_text(2, " (in brackets)")
    assert two == "mean over 2 seeds; no interval with fewer than 3 seeds" and "95 %" not in two
    assert book.seeds_interval_text(1).startswith("mean over 1 seed;")


def test_leak_verdict_with_missing_intervals_says_so_and_concludes_no_overlap():
    nan = (math.nan, math.nan)
    verdict = book.leak_verdict([(nan, nan), (nan, nan)], 2)
    assert "no interval" in verdict and "2 seeds" in verdict and "overlap" not in verdict
    # one missing interval is enough: the others cannot stand for every case
    assert "no interval" in book.leak_verdict([((50, 60), (55, 65)), ((50, 60), nan)], 3)


def test_leak_verdict_reads_overlapping_and_separate_intervals():
    assert "overlap in every case" in book.leak_verdict([((50, 60), (55, 65)), ((40, 50), (50, 52))], 3)
    assert "apart" in book.leak_verdict([((50, 60), (55, 65)), ((40, 45), (50, 52))], 3)


def _channels_summary(ci: bool, n_seeds: int) -> pd.DataFrame:
    rows = []
    for pair, mean in (("", 58.6), ("0-4", 54.5), ("0-4-2", 64.4)):
        rows.append({"machine": "fan", "score": "mse", "metric": "AUC", "mic_pair": pair, "mean": mean,
                     "ci_low": mean - 5 if ci else np.nan, "ci_high": mean + 5 if ci else np.nan, "n_seeds": n_seeds})
    return pd.DataFrame(rows)


def test_channels_reading_without_intervals_says_that_nothing_is_tested():
    table, text = book.channels_reading(_channels_summary(ci=False, n_seeds=2), "mse")
    assert "best with 3" in text and "With 2 seeds no interval is computed" in text
    shown = book.channels_table(table)
    assert list(shown.columns) == ["mean over seeds", "seeds"]
    assert not shown.isna().any().any()


def test_channels_reading_with_intervals_keeps_them_and_adds_no_caveat():
    table, text = book.channels_reading(_channels_summary(ci=True, n_seeds=3), "mse")
    assert "no interval" not in text and "overlapping the dual AE's" in text
    assert list(book.channels_table(table).columns) == ["mean over seeds", "95 % low", "95 % high", "seeds"]
    summary = _channels_summary(ci=True, n_seeds=3).assign(score="mahalanobis")
    assert "fan: AUC (Mahalanobis)" in book.channels_reading(summary, "mahalanobis")[1]


# -- the paper profile's time, projected the same way on the Reproduce and Cluster pages -----------------

def _fake_run(results, spec, cell_seconds: float = 1.0):
    """A finished run's files as the projections read them: one cell.json per (machine, seed, model),
    each trained in ``cell_seconds``, and a journal whose grids took exactly their training time."""
    path = results / spec.run_id()
    models = spec.model_specs()
    for machine in spec.machines:
        for seed in spec.seeds:
            for ms in models:
                cell = path / "cells" / machine / f"seed{seed}" / ms.name / "cell.json"
                cell.parent.mkdir(parents=True, exist_ok=True)
                cell.write_text(json.dumps({"machine": machine, "seed": seed, "model": ms.name, "train_seconds": cell_seconds}))
    grids = [{"event": "grid_finished", "cells": len(models), "seconds": cell_seconds * len(models)}
             for _ in spec.machines for _ in spec.seeds]
    (path / "journal.jsonl").write_text("".join(json.dumps(g) + "\n" for g in grids))
    (path / "provenance.json").write_text(json.dumps({"device": "test"}))


def test_training_projection_scales_by_the_number_of_models(tmp_path):
    nine, ten = book.make_spec("quick"), book.make_spec("quick", baseline_mean=True)
    assert (len(nine.model_specs()), len(ten.model_specs())) == (9, 10)
    _fake_run(tmp_path, nine)
    _fake_run(tmp_path, ten)
    hours = [book.training_projection(s, tmp_path)["projected hours, paper profile"].iloc[0] for s in (nine, ten)]
    # the same seconds per model: the paper grid's 10 models take as long whichever grid measured them
    assert hours[0] == pytest.approx(hours[1], abs=0.1)


def test_training_projection_agrees_with_grid_cost_projection(tmp_path):
    spec = book.make_spec("quick")
    _fake_run(tmp_path, spec)
    paper = book.make_spec("paper", data_root="/mimii")
    training_h = book.training_projection(spec, tmp_path)["projected hours, paper profile"].iloc[0]
    _, projected = book.grid_cost_projection(spec, tmp_path, workers=(1,))
    one_core_h = projected["expected wall time (h)"].iloc[0]
    assert projected["rounds of grids"].iloc[0] == len(paper.machines) * len(paper.seeds)
    assert training_h == pytest.approx(one_core_h, abs=0.1)
