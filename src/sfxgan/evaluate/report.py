"""The evaluation report: metrics.json for programs, report.html and report.md for people.

REPORT_DIR/
    metrics.json            every figure, per class and overall (written last: a report
                            with it is complete)
    report.html, report.md  the table, how to read it, the closest pairs, the pictures
    spectrograms/<class>.png real and generated log-mel spectrograms side by side
    embedding.png           real and generated clips on the judge embedding's two main axes
    losses.png              the run's loss curves (when evaluate is given --run)
    audio/                  a few real and generated clips to listen to next to the pictures
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sfxgan.data.audio import write_wav  # noqa: E402
from sfxgan.errors import SfxganError  # noqa: E402
from sfxgan.evaluate.envelope import FLOOR_LIMIT_DB  # noqa: E402
from sfxgan.evaluate.evaluation import Evaluation  # noqa: E402
from sfxgan.files import save_figure, write_json_atomic, write_text_atomic  # noqa: E402

SHOWN = 3  # real and generated spectrograms per class
HEARD = 2  # real and generated clips per class in audio/

# (key, header, how to read it); floors are printed in brackets after the figure
COLUMNS = [
    (
        "class_fit",
        "class fit",
        "share of generated clips the judge assigns to the asked class; "
        "higher is better, the judge's held-out accuracy on real clips is the ceiling",
    ),
    (
        "fd",
        "FD (real / real via GL)",
        "Frechet distance between judge embeddings of generated and real clips; lower is better; "
        "in brackets the same distance between two halves of the real data, then between "
        "Griffin-Lim resynthesised real clips and real ones: what a generator that reproduced "
        "real spectrograms exactly would score after phase reconstruction",
    ),
    (
        "kid",
        "KID (real)",
        "kernel inception distance (unbiased, so it can dip below 0); lower is "
        "better; in brackets between two real halves",
    ),
    (
        "ndb_k",
        "NDB/K (real)",
        "share of k-means bins of the real embeddings whose share of "
        "generated clips differs significantly (p < 0.05); lower is better; "
        "in brackets real halves",
    ),
    (
        "diversity",
        "diversity",
        "mean pairwise embedding distance of generated clips over that of "
        "real clips; 1 is as varied as the real data, below 1 less varied",
    ),
    (
        "memorisation",
        "near copies (real)",
        "share of generated clips that are much nearer one real clip of their class than the "
        "rest: the distance to the nearest over the median distance to all, below what 95 % "
        "of real clips score against the others of their class (log-mel pictures within 50 dB "
        "of each clip's loudest part, both sides through Griffin-Lim resynthesis); a smooth "
        "texture near every real clip is not a copy; lower is better; in brackets the share "
        "of real clips flagged against the other real clips, what a generator that never "
        "copies would score",
    ),
    (
        "attack_ms",
        "attack ms (real / via GL)",
        "median time for the RMS envelope (2 ms windows) to rise from 10 % to 90 % of its "
        "peak: a hit's attack, a few ms when sharp; in brackets the real clips', then real "
        "clips taken the generator's way to audio (the run's spectrogram and phase "
        "reconstruction, with --run)",
    ),
    (
        "floor_db",
        "floor dB (real / via GL)",
        "median noise floor: the 10th percentile of 16 ms frame energies below the clip's "
        "loudest frame, the hiss under a decay or the silence after it "
        f"({FLOOR_LIMIT_DB:.0f}: digital silence); in brackets as for the attack",
    ),
    (
        "phase_sc",
        "phase SC (real)",
        "spectral convergence between the generator's spectrogram and "
        "the spectrogram of its reconstructed audio; lower is better; "
        "in brackets real clips through the same phase reconstruction",
    ),
    (
        "fad_vggish",
        "FAD VGGish (real)",
        "Frechet Audio Distance on VGGish frame embeddings, as "
        "in DCASE 2023 Task 7; lower is better; in brackets between two real halves",
    ),
]
FLOORS = {
    "fd": "fd_real",
    "kid": "kid_real",
    "ndb_k": "ndb_k_real",
    "memorisation": "memorisation_real",
    "phase_sc": "phase_sc_real",
    "fad_vggish": "fad_vggish_real",
    "attack_ms": "attack_ms_real",
    "floor_db": "floor_db_real",
}
# a second reference after the first, in brackets: real clips through phase reconstruction
SECOND_FLOORS = {
    "fd": "fd_resynth",
    "attack_ms": "attack_ms_resynth",
    "floor_db": "floor_db_resynth",
}


def _fmt(value, key: str) -> str:
    if value is None:
        return "n/a"
    if key in ("class_fit", "memorisation"):
        return f"{100 * value:.0f} %"
    if key == "kid":
        return f"{value:.3f}"
    if key in ("ndb_k", "diversity", "phase_sc"):
        return f"{value:.2f}"
    if key in ("attack_ms", "floor_db"):
        return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"
    return f"{value:.3g}"


def cell(row: dict, key: str) -> str:
    text = _fmt(row.get(key), key)
    floor, second = FLOORS.get(key), SECOND_FLOORS.get(key)
    if floor and row.get(floor) is not None:
        if second and row.get(second) is not None:
            text += f" ({_fmt(row[floor], key)} / {_fmt(row[second], key)})"
        else:
            text += f" ({_fmt(row[floor], key)})"
    return text


def listener_lines(result: dict) -> list[str]:
    """Per class, what a sound designer hears first: 'kick: attack 9 ms (real 6 ms), floor
    -45 dB (real -107 dB)'."""
    lines = []
    for name, row in result["per_class"].items():
        if row.get("attack_ms") is None or row.get("floor_db") is None:
            continue
        parts = []
        for key, word, unit in (("attack_ms", "attack", "ms"), ("floor_db", "floor", "dB")):
            text = f"{word} {_fmt(row[key], key)} {unit} (real {_fmt(row.get(key + '_real'), key)}"
            if row.get(key + "_resynth") is not None:
                text += f", via GL {_fmt(row[key + '_resynth'], key)}"
            parts.append(text + ")")
        lines.append(f"{name}: {', '.join(parts)}")
    return lines


def table_rows(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    result = evaluation.metrics
    # only when evaluate had a run, VGGish weights, clips with sound
    optional = ("phase_sc", "fad_vggish", "attack_ms", "floor_db")
    keys = [k for k, _, _ in COLUMNS if k not in optional or k in result["overall"]]
    headers = ["class", "clips (real / gen.)"] + [h for k, h, _ in COLUMNS if k in keys]
    rows = []
    for name, row in [*result["per_class"].items(), ("overall", result["overall"])]:
        counts = f"{row['n_real']} / {row['n_generated']}"
        rows.append([name, counts] + [cell(row, k) for k in keys])
    return headers, rows


def save_class_spectrograms(evaluation: Evaluation, folder: Path) -> dict[str, Path]:
    """Per class, SHOWN real then SHOWN generated log-mel spectrograms (dB, same colour scale)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = evaluation.judge.config
    duration = config.clip_samples / config.sample_rate
    paths = {}
    for name in evaluation.metrics["classes"]:
        real = evaluation.real_outputs.log_mel[evaluation.real.of(name)][:SHOWN]
        fake = evaluation.generated_outputs.log_mel[evaluation.generated.of(name)][:SHOWN]
        panels = [("real", m) for m in real] + [("generated", m) for m in fake]
        width = 2.4 * len(panels) + 0.8
        fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.4), squeeze=False)
        fig.subplots_adjust(left=0.5 / width, right=0.99, bottom=0.2, top=0.8, wspace=0.2)
        top = max(float(np.max([m.max() for _, m in panels])), -60.0)
        for ax, (kind, mel) in zip(axes[0], panels, strict=True):
            ax.imshow(
                mel.T,
                origin="lower",
                aspect="auto",
                extent=(0.0, duration, 0, mel.shape[1]),
                vmin=top - 80,
                vmax=top,
                cmap="magma",
                interpolation="nearest",
            )
            ax.set_title(kind, fontsize=9, color="tab:blue" if kind == "real" else "tab:red")
            ax.set_xlabel("time (s)", fontsize=7)
            ax.tick_params(labelsize=6)
        axes[0][0].set_ylabel("mel band", fontsize=7)
        fig.suptitle(f"{name}: real (left) and generated (right)", fontsize=10)
        paths[name] = folder / f"{_safe(name)}.png"
        save_figure(fig, paths[name], dpi=80)
        plt.close(fig)
    return paths


def save_embedding_map(evaluation: Evaluation, path: Path) -> Path:
    """Real (dots) and generated (crosses) clips on the first two principal axes of the real
    embeddings, one colour per class: coverage and collapse are visible at a glance."""
    real, fake = evaluation.real_outputs.embeddings, evaluation.generated_outputs.embeddings
    mean = real.mean(axis=0)
    _, _, axes_t = np.linalg.svd(real - mean, full_matrices=False)
    project = axes_t[:2].T
    fig, ax = plt.subplots(figsize=(6.5, 5))
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(evaluation.metrics["classes"]):
        r = (real[evaluation.real.of(name)] - mean) @ project
        g = (fake[evaluation.generated.of(name)] - mean) @ project
        colour = colours(i % 10)
        ax.scatter(r[:, 0], r[:, 1], s=14, color=colour, alpha=0.6, label=f"{name} real")
        ax.scatter(g[:, 0], g[:, 1], s=22, color=colour, marker="x", label=f"{name} generated")
    ax.set_xlabel("first principal axis of real embeddings", fontsize=8)
    ax.set_ylabel("second principal axis", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, ncol=2, loc="best")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "class"


def save_audio(evaluation: Evaluation, folder: Path) -> dict[str, list[tuple[str, str]]]:
    rate = evaluation.judge.config.sample_rate
    files: dict[str, list[tuple[str, str]]] = {}
    for name in evaluation.metrics["classes"]:
        files[name] = []
        for kind, clips in (("real", evaluation.real), ("generated", evaluation.generated)):
            for j, i in enumerate(clips.of(name)[:HEARD]):
                path = write_wav(folder / f"{_safe(name)}_{kind}_{j}.wav", clips.audio[i], rate)
                files[name].append((kind, path.name))
    return files


def check_report_folder(out: Path) -> None:
    """Fail before the work, not after: the report folder must be a folder we can create."""
    if out.exists() and not out.is_dir():
        raise SfxganError(f"--out '{out}' is a file; give a folder for the report")


def write_report(evaluation: Evaluation, out: str | Path, run: str | Path | None = None) -> Path:
    """Write the report folder; returns the path of report.html."""
    out = Path(out)
    check_report_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    result = evaluation.metrics
    spectrograms = save_class_spectrograms(evaluation, out / "spectrograms")
    save_embedding_map(evaluation, out / "embedding.png")
    audio = save_audio(evaluation, out / "audio")
    losses = _save_losses(run, out / "losses.png") if run else None
    headers, rows = table_rows(evaluation)
    glossary = [(h, text) for k, h, text in COLUMNS if any(h == x for x in headers)]
    rel = {name: os.path.relpath(p, out) for name, p in spectrograms.items()}
    _write_markdown(out / "report.md", result, headers, rows, glossary, rel, losses is not None)
    html_path = _write_html(
        out / "report.html", result, headers, rows, glossary, rel, audio, losses is not None
    )
    # last: `experiment compare` takes a report with metrics.json for a finished one
    write_json_atomic(out / "metrics.json", result)
    return html_path


def _save_losses(run: str | Path, path: Path) -> Path | None:
    from sfxgan.plots import save_loss_curves
    from sfxgan.run_folder import read_metrics, run_of

    return save_loss_curves(path, read_metrics(run_of(run)))  # --run may name a checkpoint


def _summary_lines(result: dict) -> list[str]:
    judge = result["classifier"]
    overall = result["overall"]
    lines = [
        f"Real data: `{result['real']}`; generated clips: `{result['generated']}`"
        + (f"; run: `{result['run']}`" if result.get("run") else "")
        + (f"; {result['checkpoint']}" if result.get("checkpoint") else "")
        + (
            f". Training ended at step {ended['step']}: {ended['said']}"
            if (ended := result.get("training_ended"))
            else ""
        ),
        f"Judge: a CNN trained on the real data, held-out accuracy "
        f"{100 * (judge['held_out_accuracy'] or 0):.1f} % ({judge.get('n_held_out', '?')} clips"
        + (
            f"; {100 * judge['held_out_accuracy_resynthesised']:.1f} % after Griffin-Lim), "
            if judge.get("held_out_accuracy_resynthesised") is not None
            else "), "
        )
        + f"listening to {judge['clip_samples'] / judge['sample_rate']:.3f} s at "
        f"{judge['sample_rate']} Hz.",
        f"Inception Score with the judge: {overall['inception_score']:.2f} "
        f"(real clips: {overall['inception_score_real']:.2f}; at most {len(judge['classes'])}, "
        "the number of classes).",
    ]
    return lines


CLOSEST_HEADERS = (
    "class",
    "generated",
    "nearest real",
    "distance",
    "nearest / median",
    "threshold",
    "near copy",
)


def _closest_rows(result: dict) -> list[list[str]]:
    """The closest generated/real pairs as table cells, for both report formats."""
    return [
        [
            p["class"],
            Path(p["generated"]).name,
            Path(p["real"]).name,
            f"{p['distance']:.1f}",
            f"{p['ratio']:.2f}",
            f"{p['threshold']:.2f}",
            "yes" if p["near_copy"] else "no",
        ]
        for p in result["closest_pairs"]
    ]


def _write_markdown(path, result, headers, rows, glossary, spectrograms, has_losses) -> None:
    lines = ["# sfxgan evaluation", ""]
    lines += [f"- {line}" for line in _summary_lines(result)]
    heard = listener_lines(result)
    if heard:
        lines += ["", "What a listener hears first, per class (medians):", ""]
        lines += [f"- {line}" for line in heard]
    lines += ["", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "How to read it:", ""]
    lines += [f"- **{header}**: {text}." for header, text in glossary]
    lines += ["", "## Generated clips nearest to a real clip", ""]
    lines += ["| " + " | ".join(CLOSEST_HEADERS) + " |", "|---|---|---|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in _closest_rows(result)]
    lines += ["", "## Spectrograms", ""]
    lines += [f"![{name}]({rel})" for name, rel in spectrograms.items()]
    lines += ["", "## Embedding map", "", "![embedding](embedding.png)"]
    if has_losses:
        lines += ["", "## Training losses", "", "![losses](losses.png)"]
    write_text_atomic(path, "\n".join(lines) + "\n")


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;
padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f3f3f3}img{max-width:100%}.clips{display:flex;flex-wrap:wrap;gap:1em}
.clips figure{margin:0}figcaption{font-size:.8em;color:#555}dt{font-weight:600}
dd{margin:0 0 .5em 1em;color:#444}"""


def _write_html(path, result, headers, rows, glossary, spectrograms, audio, has_losses) -> Path:
    e = html.escape
    parts = [
        "<!doctype html><meta charset='utf-8'><title>sfxgan evaluation</title>",
        f"<style>{_CSS}</style><h1>sfxgan evaluation</h1><ul>",
    ]
    parts += [f"<li>{e(line).replace('`', '')}</li>" for line in _summary_lines(result)]
    parts.append("</ul>")
    heard = listener_lines(result)
    if heard:
        parts.append("<p>What a listener hears first, per class (medians):</p><ul>")
        parts += [f"<li>{e(line)}</li>" for line in heard]
        parts.append("</ul>")
    parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    parts.append("</table><dl>")
    parts += [f"<dt>{e(h)}</dt><dd>{e(text)}.</dd>" for h, text in glossary]
    parts.append("</dl><h2>Generated clips nearest to a real clip</h2><table><tr>")
    parts.append("".join(f"<th>{h}</th>" for h in CLOSEST_HEADERS) + "</tr>")
    for cells in _closest_rows(result):
        parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table><h2>Per class</h2>")
    for name, rel in spectrograms.items():
        parts.append(f"<h3>{e(name)}</h3><img src='{e(rel)}' alt='{e(name)} spectrograms'>")
        parts.append("<div class='clips'>")
        for kind, file in audio.get(name, []):
            parts.append(
                f"<figure><audio controls src='audio/{e(file)}'></audio>"
                f"<figcaption>{e(kind)}: {e(file)}</figcaption></figure>"
            )
        parts.append("</div>")
    parts.append("<h2>Embedding map</h2><img src='embedding.png' alt='embedding map'>")
    if has_losses:
        parts.append("<h2>Training losses</h2><img src='losses.png' alt='loss curves'>")
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path
