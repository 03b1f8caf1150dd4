#!/usr/bin/env python3
"""Timing harness for the authors' TensorFlow reference (docs/benchmarks.md, "Against the
reference"). It holds none of the reference's code: put the files of Reinliu/CWGAN-SFX
Models/DLGAN (ctifgan.py at 396594d, wgan_gp.py at c5f11b8) in ./reference beside this script
and install tensorflow-cpu 2.21, tf-keras 2.21 and tensorflow-io 0.37.1 in their own venv.

Paper: "Conditional sound effects generation with regularized WGAN".

The reference's own code is imported unchanged from ./reference (ctifgan.py, wgan_gp.py):
  * model building: ctifgan.generator(...), ctifgan.discriminator(...), wgan_gp.WGANGP(...)
    exactly as Models/DLGAN/train_gan.py:train_model builds them (Adam 1e-4, beta 0.5/0.9,
    discriminator_extra_steps=1);
  * training step: wgan_gp.WGANGP.train_batch(...) called directly (it is exactly the region
    that the reference's WGANGP.train loop times).  With discriminator_extra_steps=1 one call
    = 1 generator update (adversarial + 1e-2 * MSE(audio, GriffinLim50(G(z)))) followed by
    1 critic update with gradient penalty.  Eager mode, as in the reference (no tf.function).
  * generation: mirrors Models/DLGAN/generate.py line for line (that script cannot be imported:
    it loads a trained .h5 at import time) minus the sf.write of each file.

Data are synthetic: random waveforms shaped like utils.create_dataset's output
((N, 16384, 1) float64, labels (N, 1) int64 over 5 classes) and the spectrogram
preprocessing of train_gan.py (untimed) -> specs (N, 256, 128, 1) float32.

Usage:
  python time_reference.py --mode train --batch 4  --steps 3
  python time_reference.py --mode train --batch 16 --steps 3
  python time_reference.py --mode gen   --clips 64
(runs under tf_keras = Keras 2 API via TF_USE_LEGACY_KERAS=1, set by this script.)
The last stdout line is one JSON object with the figures.
"""

import argparse
import contextlib
import io
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REF_DIR = os.path.join(HERE, "reference")


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--mode", choices=["train", "gen"], default="train")
    p.add_argument("--batch", type=int, default=4, help="train: batch size")
    p.add_argument(
        "--steps", type=int, default=3, help="train: timed steps (after --warmup untimed ones)"
    )
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed warm-up steps / generation passes"
    )
    p.add_argument("--clips", type=int, default=64, help="gen: number of clips to generate")
    p.add_argument("--n-data", type=int, default=64, help="train: size of the synthetic data set")
    p.add_argument(
        "--mse-weight", type=float, default=1e-2, help="reconstruction-loss weight (paper: 1e-2)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="if >0, set TF intra- and inter-op threads to this (default: TF's own default)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--keras3",
        action="store_true",
        help="run under Keras 3 instead of tf_keras (Keras 2). NOTE: the reference as written "
        "fails there (generator([tensor, numpy]) -> 'cannot mix tensors and non-tensors')",
    )
    p.add_argument(
        "--show-summary",
        action="store_true",
        help="let ctifgan.py's import-time model.summary() print (hidden by default)",
    )
    return p.parse_args()


def main():
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The reference was written for TF/Keras 2.x (README: tensorflow==2.6, keras==2.6); with TF
    # 2.21 the Keras-2 API is the tf-keras package, selected by TF_USE_LEGACY_KERAS=1 before TF
    # is imported.
    os.environ["TF_USE_LEGACY_KERAS"] = "0" if args.keras3 else "1"
    import warnings

    warnings.filterwarnings("ignore")

    t_import0 = time.perf_counter()
    import numpy as np
    import tensorflow as tf

    if args.threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import tensorflow_io as tfio  # the reference uses tfio.audio.{spectrogram,inverse_spectrogram}

    sys.path.insert(0, REF_DIR)
    # ctifgan.py builds a generator + discriminator and prints their summaries at import time
    # (module-level code, kept as written); hide that output unless asked.
    sink = sys.stdout if args.show_summary else io.StringIO()
    with contextlib.redirect_stdout(sink):
        import ctifgan
        import wgan_gp
    t_import = time.perf_counter() - t_import0

    np.random.seed(args.seed)
    tf.random.set_seed(args.seed)

    # ---------------- constants of the reference (16k setting) ----------------
    audio_size_samples = 16384  # train_gan.py
    clipBelow = -10  # train_gan.py
    n_classes = 5
    latent_dim = 100  # train_gan.py __main__
    lr = 1e-4  # train_gan.py __main__ (both nets)
    discriminator_extra_steps = 1  # train_gan.py __main__  -> n_critic = 1

    # ---------------- model building, as train_gan.py:train_model ----------------
    from tensorflow.keras.optimizers import Adam

    t_build0 = time.perf_counter()
    discriminator = ctifgan.discriminator(n_classes=n_classes)
    generator = ctifgan.generator(latent_dim=latent_dim, n_classes=n_classes)
    discriminator_optimizer = Adam(learning_rate=lr, beta_1=0.5, beta_2=0.9)
    generator_optimizer = Adam(learning_rate=lr, beta_1=0.5, beta_2=0.9)
    gan = wgan_gp.WGANGP(
        latent_dim=latent_dim,
        discriminator=discriminator,
        generator=generator,
        n_classes=n_classes,
        discriminator_extra_steps=discriminator_extra_steps,
        d_optimizer=discriminator_optimizer,
        g_optimizer=generator_optimizer,
    )
    gan.compile(d_optimizer=discriminator_optimizer, g_optimizer=generator_optimizer)
    t_build = time.perf_counter() - t_build0

    if args.keras3:
        import keras as _k
    else:
        import tf_keras as _k
    info = {
        "tf": tf.__version__,
        "keras": _k.__version__,
        "keras_package": _k.__name__,
        "tfio": tfio.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "params_generator": int(generator.count_params()),
        "params_critic": int(discriminator.count_params()),
        "generator_output_shape": [None if d is None else int(d) for d in generator.output_shape],
        "import_s": round(t_import, 3),
        "build_s": round(t_build, 3),
    }
    print(
        f"TF {info['tf']} / Keras {info['keras']} / tfio {info['tfio']}; "
        f"threads intra={info['intra_op_threads']} "
        f"inter={info['inter_op_threads']} (0 = TF default)"
    )
    print(
        f"params: generator {info['params_generator']:,}  critic {info['params_critic']:,}  "
        f"G output {tuple(generator.output_shape)}"
    )

    if args.mode == "train":
        result = time_train(args, tf, np, tfio, gan, audio_size_samples, clipBelow, n_classes)
    else:
        result = time_gen(args, tf, np, tfio, generator, n_classes, latent_dim)
    result.update(info)
    print(json.dumps(result))


def time_train(args, tf, np, tfio, gan, audio_size_samples, clipBelow, n_classes):
    B = args.batch
    N = max(args.n_data, B)
    # synthetic stand-in for utils.create_dataset():
    # audio (N, 16384, 1) float64, labels (N, 1) int64
    audio = np.clip(0.1 * np.random.randn(N, audio_size_samples), -1.0, 1.0).astype(np.float64)
    audio = np.expand_dims(audio, axis=-1)
    label_names = [f"class{i}" for i in np.arange(N) % n_classes]
    labels = np.expand_dims(np.unique(label_names, return_inverse=True)[1], axis=-1)

    # ---- untimed preprocessing, lines copied from train_gan.py:train_model ----
    def normalize(specs):  # train_gan.normalize
        max_value = tf.reduce_max(specs)
        normalized_spec = specs / max_value
        return normalized_spec, max_value

    wave = tf.reshape(tf.cast(audio, tf.float32), (-1, 16384))
    specs = tfio.audio.spectrogram(wave, nfft=254, window=256, stride=64)
    normalized_spec, max_value = normalize(specs)
    log_spec = tf.math.log(
        tf.clip_by_value(
            t=normalized_spec, clip_value_min=tf.exp(-10.0), clip_value_max=float("inf")
        )
    )
    log_spec = log_spec / (-clipBelow / 2) + 1
    specs = tf.reshape(log_spec, (-1, 256, 128, 1))
    specs = np.asarray(specs)
    print(
        f"synthetic data: audio {audio.shape} {audio.dtype}, labels {labels.shape} {labels.dtype}, "
        f"specs {specs.shape} {specs.dtype}, max_value {float(max_value):.4f}"
    )

    times = []
    for it in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        # == exactly what WGANGP.train times per batch ==
        d_loss, g_loss = gan.train_batch(
            audio, labels, specs, audio_size_samples, B, max_value, args.mse_weight
        )
        d, g = float(d_loss), float(g_loss)  # make sure everything has materialised
        dt = time.perf_counter() - t0
        tag = "warm-up" if it < args.warmup else "timed"
        print(
            f"step {it} ({tag}) batch {B}: {dt:.3f} s   d_loss {d:.4f}  g_loss {g:.4f}", flush=True
        )
        if it >= args.warmup:
            times.append(dt)
        else:
            warm = dt
    res = {
        "case": "train",
        "batch": B,
        "n_critic": gan.d_steps,
        "mse_weight": args.mse_weight,
        "griffin_lim_iters": 50,
        "warmup_steps": args.warmup,
        "step_s": [round(t, 4) for t in times],
    }
    if args.warmup:
        res["warmup_s"] = round(warm, 4)
    if times:
        ts = sorted(times)
        res["mean_step_s"] = round(sum(times) / len(times), 4)
        res["median_step_s"] = round(
            ts[len(ts) // 2] if len(ts) % 2 else 0.5 * (ts[len(ts) // 2 - 1] + ts[len(ts) // 2]), 4
        )
        res["min_step_s"] = round(ts[0], 4)
        res["samples_per_s"] = round(B / res["median_step_s"], 3)
    return res


def time_gen(args, tf, np, tfio, generator, n_classes, latent_dim):
    # constants of generate.py
    max_value = 114.14022827148438
    z_dim = latent_dim
    sample_rate = 16000
    label_names = {str(i): f"class{i}" for i in range(n_classes)}  # label_names.json equivalent
    # generate.py makes n_samples_label clips per class; split --clips over the 5 classes
    counts = [
        args.clips // n_classes + (1 if i < args.clips % n_classes else 0) for i in range(n_classes)
    ]

    def one_pass(counts):
        t_pred = t_gl = t_post = 0.0
        n_done = 0
        for synth_type, n_samples_label in zip(label_names, counts, strict=True):
            if n_samples_label == 0:
                continue
            # ---- lines of generate.py ----
            t0 = time.perf_counter()
            noise = tf.random.normal(shape=(n_samples_label, z_dim))
            label_synth = tf.constant(int(synth_type), shape=(n_samples_label, 1))
            synth_audio = generator.predict([noise, label_synth], verbose=0)
            t1 = time.perf_counter()
            de_log_spec = tf.math.exp(5 * (synth_audio - 1))
            generated_audio = de_log_spec * max_value
            generated_audio = tf.reshape(generated_audio, (-1, 256, 128))
            generated_audio = tfio.audio.inverse_spectrogram(
                generated_audio, nfft=254, stride=64, window=254, iterations=50
            )
            _ = generated_audio.numpy()  # materialise (eager ops are synchronous on CPU anyway)
            t2 = time.perf_counter()
            generated_audio = generated_audio / tf.reduce_max(tf.abs(generated_audio))
            generated_audio = generated_audio[:, :sample_rate]
            generated_audio = np.asarray(generated_audio, dtype="float32")
            for i in range(n_samples_label):
                # generate.py writes generated_audio[i] / generated_audio[i].max() per clip
                _ = generated_audio[i] / generated_audio[i].max()
            t3 = time.perf_counter()
            t_pred += t1 - t0
            t_gl += t2 - t1
            t_post += t3 - t2
            n_done += n_samples_label
        return n_done, t_pred, t_gl, t_post

    for _ in range(args.warmup):  # untimed: traces Keras' predict function for each chunk size
        distinct = sorted(set(c for c in counts if c))
        one_pass(distinct + [0] * (n_classes - len(distinct)))
    t0 = time.perf_counter()
    n, t_pred, t_gl, t_post = one_pass(counts)
    total = time.perf_counter() - t0
    res = {
        "case": "gen",
        "clips": n,
        "clips_per_class": counts,
        "griffin_lim_iters": 50,
        "total_s": round(total, 4),
        "clips_per_s": round(n / total, 3),
        "predict_ms_per_clip": round(1000 * t_pred / n, 3),
        "griffin_lim_ms_per_clip": round(1000 * t_gl / n, 3),
        "postproc_ms_per_clip": round(1000 * t_post / n, 3),
        "note": "clips are 16000 samples after generate.py's [:, :sample_rate] slice; "
        "no file writing",
    }
    print(
        f"generated {n} clips in {total:.3f} s -> {res['clips_per_s']} clips/s; per clip: predict "
        f"{res['predict_ms_per_clip']} ms, Griffin-Lim(50) {res['griffin_lim_ms_per_clip']} ms, "
        f"peak-norm {res['postproc_ms_per_clip']} ms"
    )
    return res


if __name__ == "__main__":
    main()
