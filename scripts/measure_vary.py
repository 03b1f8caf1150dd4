"""Measure `sfxgan vary` against the targets of docs/vary.md, on training clips and held-out clips.

    python scripts/measure_vary.py RUN --held-out DIR [--per-set 20] [--out vary-figures.json]

For each sound (PER_SET clips of the run's training data and PER_SET of a held-out folder of the
same classes, spread evenly over the classes, chosen by a fixed seed):

- the fitted take's log-spectral distance to the sound (apps.vary.log_spectral_distance, the
  sound at its class's level), against the nearest of RANDOM random takes of the sound's class;
- whether the run's judge hears the fitted take as the sound's class (its folder);
- TAKES takes at the spread asked: the median judge-embedding distance from each take to the
  sound, over the same for the random takes (the target: at most 0.6);
- near copies, with the near-copy search's view of clips (evaluate.evaluation.copy_features):
  takes flagged as copies of the sound or of a real clip of the class (evaluate.metrics.
  memorisation against the class's training clips plus the sound), and takes that are near
  copies of another take by the same test (copies_of_each_other).

Prints one line per sound and a summary; writes every figure to --out.

    python scripts/measure_vary.py tables fig/*.json     # docs/vary.md's tables from --out files
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sfxgan.apps.vary import (
    heard_classes,
    invert,
    judge_of,
    level_matched,
    load_source,
    log_spectral_distance,
    variations,
)
from sfxgan.data.dataset import list_source, load_dataset
from sfxgan.evaluate.evaluation import copy_features
from sfxgan.evaluate.metrics import memorisation, pairwise_distances, relative_nearest
from sfxgan.generate import Sampler

RANDOM = 100
TAKES = 10
COPY_QUANTILE = 0.05


def pick(files: list[tuple[str, str]], count: int, seed: int) -> list[tuple[str, str]]:
    """`count` (path, class) pairs spread evenly over the classes."""
    rng = np.random.default_rng(seed)
    classes = sorted({label for _, label in files})
    chosen = []
    for k, name in enumerate(classes):
        own = [f for f in files if f[1] == name]
        n = count // len(classes) + (1 if k < count % len(classes) else 0)
        chosen += [own[i] for i in rng.permutation(len(own))[:n]]
    return chosen


def measure_one(sampler, judge, real_by_class, path, label, spreads, seed) -> dict:
    source = load_source(path, sampler)
    candidates = heard_classes(judge, source, sampler.sample_rate)  # as `sfxgan vary` does
    fit = invert(sampler, source, seed=seed, candidates=candidates)
    own = level_matched(sampler, source, label, seed)  # as the random takes of its class are
    z = sampler.latents(label, RANDOM, seed + 1)
    labels = torch.full((RANDOM,), sampler.label(label), dtype=torch.long)
    random_spec = sampler.log_spec(z, labels)
    source_out = judge.outputs(source.audio[None])
    # the sound as the model's phase reconstruction renders its spectrogram: every take carries
    # that method's mark (a floor where the sound has digital silence), which the judge hears
    rendered = judge.outputs(sampler.to_audio(own[None]).numpy()).embeddings
    out = judge.outputs(sampler.to_audio(torch.cat([fit.log_spec[None], random_spec])).numpy())
    to_real = np.linalg.norm(out.embeddings - source_out.embeddings, axis=1)
    to_rendered = np.linalg.norm(out.embeddings - rendered, axis=1)
    row = {
        "path": str(path),
        "class": label,
        "class_found": fit.class_name,
        "fit_db": float(log_spectral_distance(fit.log_spec, own)),
        "nearest_random_db": float(log_spectral_distance(random_spec, own).min()),
        "fit_judged": judge.classes[int(out.probs[0].argmax())],
        "random_to_source": float(np.median(to_real[1:])),
        "random_to_rendered": float(np.median(to_rendered[1:])),
        "fit_to_source": float(to_real[0]),
        "fit_to_rendered": float(to_rendered[0]),
        "seconds": fit.seconds,
        "spreads": {},
    }
    reference = np.concatenate([real_by_class[label], copy_features(source_out.log_mel)])
    for spread in spreads:
        takes_spec = variations(sampler, fit, range(TAKES), spread, seed)
        takes = judge.outputs(sampler.to_audio(takes_spec).numpy())
        to_source = np.linalg.norm(takes.embeddings - source_out.embeddings, axis=1)
        to_rendered = np.linalg.norm(takes.embeddings - rendered, axis=1)
        takes_copy = copy_features(takes.log_mel)
        flagged = memorisation(takes_copy, reference).flagged
        mutual = copies_of_each_other(takes_copy, reference)
        row["spreads"][f"{spread:g}"] = {
            "takes_to_source": float(np.median(to_source)),
            "takes_to_rendered": float(np.median(to_rendered)),
            "copies_of_source_or_real": int(flagged.sum()),
            "copies_of_each_other": int(mutual.sum()),
        }
    return row


def copies_of_each_other(takes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(n,) bool: takes that are near copies of another take, by the near-copy search's test
    (evaluate.metrics.memorisation) with the other takes in the place of the real clips: the
    nearest other take over the take's median distance to the real clips, under the real
    clips' own COPY_QUANTILE ratio, and nearer than the real clips' median nearest neighbour.
    A ratio, not a distance: generated textures smoother than the real ones are near each
    other without being copies."""
    real_nn, _, real_ratios = relative_nearest(reference, reference, exclude_self=True)
    threshold, reach = float(np.quantile(real_ratios, COPY_QUANTILE)), float(np.median(real_nn))
    median = np.median(pairwise_distances(takes, reference), axis=1)
    between = pairwise_distances(takes, takes)
    np.fill_diagonal(between, np.inf)
    nearest = between.min(axis=1)
    return (nearest / median < threshold) & (nearest < reach)


def real_copy_features(sampler, judge) -> dict[str, np.ndarray]:
    dataset = load_dataset(
        sampler.spec.data, sampler.spec.features, sampler.spec.train.crop, progress=False, log=None
    )
    log_mel = judge.outputs(np.asarray(dataset.audio)).log_mel
    labels = np.asarray(dataset.labels)
    return {name: copy_features(log_mel[labels == k]) for k, name in enumerate(dataset.classes)}


def summary(rows: list[dict]) -> dict:
    fit = np.array([r["fit_db"] for r in rows])
    nearest = np.array([r["nearest_random_db"] for r in rows])
    figures = {
        "sounds": len(rows),
        "fit_db_median": float(np.median(fit)),
        "nearest_random_db_median": float(np.median(nearest)),
        "fit_over_nearest_median": float(np.median(fit / nearest)),
        "fit_closer": int((fit < nearest).sum()),
        "judged_as_source": int(sum(r["fit_judged"] == r["class"] for r in rows)),
        "class_found_is_source": int(sum(r["class_found"] == r["class"] for r in rows)),
        "seconds_median": float(np.median([r["seconds"] for r in rows])),
        "takes_per_spread": TAKES * len(rows),
    }
    for ref in ("source", "rendered"):
        ratio = [r[f"fit_to_{ref}"] / r[f"random_to_{ref}"] for r in rows]
        figures[f"fit_over_random_to_{ref}_median"] = float(np.median(ratio))
    for spread in rows[0]["spreads"]:
        per = [r["spreads"][spread] for r in rows]
        figures[f"spread {spread}"] = {
            f"takes_over_random_to_{ref}_median": float(
                np.median(
                    [
                        p[f"takes_to_{ref}"] / r[f"random_to_{ref}"]
                        for p, r in zip(per, rows, strict=True)
                    ]
                )
            )
            for ref in ("source", "rendered")
        } | {
            "copies_of_source_or_real": int(sum(p["copies_of_source_or_real"] for p in per)),
            "copies_of_each_other": int(sum(p["copies_of_each_other"] for p in per)),
        }
    return figures


def tables(paths: list[Path]) -> str:
    """docs/vary.md's tables from the --out files of several runs: one row per run and set."""
    head = (
        "| run, set | fit dB (median) | nearest of 100 random dB | fit / nearest | fit nearer "
        "| class found = folder | judge: fit's class = folder | judge distance, fit / random "
        "(rendered; real) |"
    )
    fit_rows = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    spreads: dict[str, list[str]] = {}
    for path in paths:
        figures = json.loads(path.read_text())
        for name, result in figures["sets"].items():
            f = result["summary"]
            n = f["sounds"]
            label = f"{Path(figures['run']).name}, {name}"
            fit_rows.append(
                f"| {label} | {f['fit_db_median']:.2f} | {f['nearest_random_db_median']:.2f} "
                f"| {f['fit_over_nearest_median']:.2f} | {f['fit_closer']}/{n} "
                f"| {f['class_found_is_source']}/{n} | {f['judged_as_source']}/{n} "
                f"| {f['fit_over_random_to_rendered_median']:.2f}; "
                f"{f['fit_over_random_to_source_median']:.2f} |"
            )
            for key, value in f.items():
                if key.startswith("spread "):
                    spreads.setdefault(label, []).append(
                        f"{key[7:]}: {value['takes_over_random_to_rendered_median']:.2f}; "
                        f"{value['takes_over_random_to_source_median']:.2f} "
                        f"({value['copies_of_source_or_real']} + "
                        f"{value['copies_of_each_other']} of {f['takes_per_spread']})"
                    )
    take_rows = [
        "| run, set | at each spread: judge distance, takes / random (rendered; real), "
        "(near copies of the sound or a real clip + of another take, of all takes) |",
        "|---|---|",
    ]
    take_rows += [f"| {label} | {' · '.join(cells)} |" for label, cells in spreads.items()]
    return "\n".join(fit_rows) + "\n\n" + "\n".join(take_rows)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "tables":  # python scripts/measure_vary.py tables fig/*.json
        print(tables([Path(p) for p in argv[1:]]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--held-out", required=True, type=Path)
    parser.add_argument("--per-set", type=int, default=20)
    parser.add_argument("--spread", type=float, nargs="+", default=[0.3])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sampler = Sampler.from_run(args.run)
    judge = judge_of(sampler)
    if judge is None:
        sys.exit(f"{args.run} has no judge.pt: train it with --eval-every")
    real_by_class = real_copy_features(sampler, judge)
    sets = {}
    for name, folder in (("training", sampler.spec.data), ("held-out", args.held_out)):
        files = [(str(e.path), e.label) for e in list_source(folder).entries]
        sets[name] = pick(files, args.per_set, args.seed)
    figures = {"run": str(args.run), "sets": {}}
    for name, chosen in sets.items():
        rows = []
        for path, label in chosen:
            start = time.perf_counter()
            row = measure_one(sampler, judge, real_by_class, path, label, args.spread, args.seed)
            rows.append(row)
            spreads = " ".join(
                f"{k}: {v['takes_to_rendered'] / row['random_to_rendered']:.2f} "
                f"({v['copies_of_source_or_real']}+{v['copies_of_each_other']} copies)"
                for k, v in row["spreads"].items()
            )
            print(
                f"{name} {label:10s} fit {row['fit_db']:5.2f} dB vs nearest random "
                f"{row['nearest_random_db']:5.2f}; found {row['class_found']}, judged "
                f"{row['fit_judged']}; judge distance over random's, fit "
                f"{row['fit_to_rendered'] / row['random_to_rendered']:.2f}, at spread {spreads} "
                f"({time.perf_counter() - start:.1f} s)",
                flush=True,
            )
        figures["sets"][name] = {"summary": summary(rows), "rows": rows}
        print(name, json.dumps(summary(rows)), flush=True)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
