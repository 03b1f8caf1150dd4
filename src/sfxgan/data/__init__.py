"""Audio in, training batches out: decode and fit clips (`audio`), scan, validate and cache a
labelled folder (`dataset`), stream balanced batches (`batches`), augment them (`augment`)."""
