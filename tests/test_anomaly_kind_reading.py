"""The Spatial-versus-spectral page's verdict (asdlib.book.anomaly_kind_reading) on gain tables built by hand."""
import pandas as pd
import pytest

from asdlib.book import (anomaly_kind_reading, anomaly_kind_rule, anomaly_kind_verdict, gain_by_anomaly_kind,
                         seed_gains)

CONFIGS = {"base": ("mean", 0.0), "dual-0-4-a0.1": ("0-4", 0.1), "dual-2-6-a10": ("2-6", 10.0)}


def auc_frame(values: dict, score: str = "mse") -> pd.DataFrame:
    """:func:`asdlib.book.auc_by_anomaly_kind`'s long form from ``{(machine, anomaly, model): AUC per seed}``."""
    rows = []
    for (machine, anomaly, model), aucs in values.items():
        pair, alpha = CONFIGS[model]
        for seed, auc in enumerate(aucs):
            rows.append({"model": model, "kind": "baseline" if model == "base" else "dual", "mic_pair": pair, "alpha": alpha,
                         "machine": machine, "seed": seed, "anomaly": anomaly, "score": score, "AUC": auc})
    return pd.DataFrame(rows)


def one_machine(spatial_base, spatial_dual, spectral_base, spectral_dual, machine="fan", weak=40.0) -> dict:
    """One machine type: the baseline and dual 0-4 per kind (AUC per seed); dual 2-6 is worse everywhere."""
    n = len(spatial_base)
    return {(machine, "spatial", "base"): spatial_base, (machine, "spatial", "dual-0-4-a0.1"): spatial_dual,
            (machine, "spatial", "dual-2-6-a10"): (weak,) * n,
            (machine, "spectral", "base"): spectral_base, (machine, "spectral", "dual-0-4-a0.1"): spectral_dual,
            (machine, "spectral", "dual-2-6-a10"): (weak,) * n}


def reading(values: dict) -> tuple[pd.DataFrame, str]:
    auc = auc_frame(values)
    gains = gain_by_anomaly_kind(auc)
    return gains, anomaly_kind_reading(gains, seed_gains(auc, gains["best model"]))


def test_seeds_agreeing_on_spatial_give_the_premise_direction_with_the_machine_count():
    # gains: spatial +10, +8; spectral +2, +1: spatial minus spectral +8 and +7 on the two seeds
    gains, text = reading(one_machine((70, 70), (80, 78), (70, 70), (72, 71)))
    assert "+9.0 points on spatial anomalies and +1.5 on spectral ones" in text
    assert "+8.0 points — the dual AE helps spatial anomalies more" in text
    assert "larger on spatial anomalies for 1 of 1 machine types" in text
    assert "spatial minus spectral ranges from +7.0 to +8.0 points" in text
    assert "the dual AE helps spatial anomalies more, as the premise of this page expects" in text
    assert "So the data support the premise of this page (MSE)" in text
    assert "against" not in text and "at or below chance" not in text
    assert "picked on these test clips (0-4, α=0.1 for both kinds)" in text


def test_seeds_agreeing_on_spectral_go_against_the_premise_and_give_the_count():
    gains, text = reading(one_machine((70, 70), (72, 71), (70, 70), (80, 78)))
    assert "larger on spatial anomalies for 0 of 1 machine types" in text
    assert "against the premise of this page, the dual AE helps spectral anomalies more" in text
    assert "So the data go against the premise of this page (MSE)" in text


def test_seeds_disagreeing_in_sign_give_no_direction_even_with_a_large_mean():
    # seed 0: spatial +20, spectral 0 (+20); seed 1: spatial 0, spectral +4 (-4); mean +8: the old rule said "as expected"
    gains, text = reading(one_machine((70, 70), (90, 70), (70, 70), (70, 74)))
    assert "spatial minus spectral ranges from -4.0 to +20.0 points" in text
    assert "no clear difference between the kinds, since the seeds do not all have the same sign" in text
    assert "as the premise of this page expects" not in text and "against the premise" not in text
    assert "So the data do not support the premise of this page." in text


def test_seeds_agreeing_on_a_small_difference_give_no_direction_and_say_why():
    # spatial minus spectral -1.0 and -0.5: the same sign, but a mean of -0.8 points
    gains, text = reading(one_machine((70, 70), (72, 71.5), (70, 70), (73, 72)))
    assert "no clear difference between the kinds, since the mean difference, -0.8 points, is under 2" in text
    assert "do not all have the same sign" not in text


def test_machine_types_split_evenly_give_no_direction():
    # fan: spatial +12 against spectral +1 on both seeds; pump: spatial +1 against spectral +3 on both seeds.
    # Every seed's mean difference is +4.5 (same sign, over 2 points), but only 1 of 2 machine types shows it.
    values = one_machine((70, 70), (82, 82), (70, 70), (71, 71), machine="fan")
    values |= one_machine((70, 70), (71, 71), (70, 70), (73, 73), machine="pump")
    gains, text = reading(values)
    assert "larger on spatial anomalies for 1 of 2 machine types" in text
    assert "spatial minus spectral ranges from +4.5 to +4.5 points" in text
    assert "no clear difference between the kinds, since only 1 of 2 machine types have the larger gain on spatial anomalies" in text
    assert "as the premise of this page expects" not in text


def test_sub_chance_baselines_are_named_and_give_no_verdict():
    # the case of the audit (n_train 40): a spectral baseline at 35.9 % lifted to about chance
    gains, text = reading(one_machine((60, 61), (62, 62), (36, 35.8), (50, 49.6)))
    assert ("at or below chance (mean AUC at most 52 %): the baseline on spectral anomalies of fan (35.9 %) "
            "and the best dual on spectral anomalies of fan (49.8 %) — a gain from a baseline that does not beat chance") in text
    assert "no verdict on the premise is read off this score" in text
    assert "So this run cannot test the premise of this page." in text
    assert "against the premise" not in text and "as the premise of this page expects" not in text


def test_a_sub_chance_best_dual_is_named_but_the_verdict_is_still_read():
    # baselines above chance; the dual is worse and at chance on spectral anomalies: spatial minus spectral +20, +19
    gains, text = reading(one_machine((70, 70), (72, 71), (70, 70), (52, 52)))
    assert "the best dual on spectral anomalies of fan (52.0 %)" in text and "baseline on" not in text
    assert "as the premise of this page expects" in text


def test_one_seed_is_one_sample():
    gains, text = reading(one_machine((70,), (85,), (70,), (71,)))
    assert "with one training seed this is one sample of a chaotic training — so no direction is stated" in text
    assert "ranges from" not in text and "So this run cannot test the premise of this page." in text
    # a sub-chance baseline takes precedence in the verdict, but the sentence still says it is one sample
    gains, text = reading(one_machine((45,), (60,), (70,), (71,)))
    assert "one sample of a chaotic training; at or below chance" in text and "no verdict on the premise" in text


def test_the_configuration_of_each_kind_is_named_and_picked_per_kind():
    values = one_machine((70, 70), (80, 78), (70, 70), (72, 71))
    values[("fan", "spectral", "dual-2-6-a10")] = (75, 75)  # now the best on spectral anomalies
    gains, text = reading(values)
    assert gains.loc[("mse", "spatial", "fan"), "best config"] == "0-4, α=0.1"
    assert gains.loc[("mse", "spectral", "fan"), "best config"] == "2-6, α=10"
    assert "picked on these test clips (0-4, α=0.1 for spatial anomalies, 2-6, α=10 for spectral ones)" in text
    # with a different best configuration on another machine type, the sentence points to the table
    values |= one_machine((70, 70), (71, 71), (70, 70), (80, 80), machine="pump")
    gains, text = reading(values)
    assert "picked on these test clips (one per kind and machine type, named in Table 10.1)" in text


@pytest.mark.parametrize("seed_diffs, machine_diffs, baselines, expected", [
    ([3.0, 4.0, 5.0], [4.0], [70.0, 70.0], "spatial"),
    ([-3.0, -4.0, -5.0], [-4.0, -4.0, 1.0], [70.0], "spectral"),
    ([-3.0, -4.0, 5.0], [-4.0], [70.0], "unclear"),
    ([0.0, 4.0], [2.0], [70.0], "unclear"),  # a seed with no difference supports no direction
    ([3.0, 4.0], [4.0, -1.0], [70.0], "unclear"),  # machine types split evenly
    ([3.0, 4.0], [4.0], [70.0, 52.0], "chance"),
    ([3.0], [3.0], [70.0], "one seed"),
])
def test_verdict_rule(seed_diffs, machine_diffs, baselines, expected):
    assert anomaly_kind_verdict(seed_diffs, machine_diffs, baselines)[0] == expected


def test_the_rule_in_words_gives_the_chance_of_agreeing_seeds():
    assert "probability 50 %" in anomaly_kind_rule(2) and "probability 6 %" in anomaly_kind_rule(5)
    assert "at least 2 points" in anomaly_kind_rule(3) and "above 52 %" in anomaly_kind_rule(3)
    one = anomaly_kind_rule(1)
    assert "one seed is one sample" in one and "probability" not in one
