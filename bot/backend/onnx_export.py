"""Exporting a model to ONNX, once, and checking the export before it is used.

The first time a model is used it is exported from its local weights (torch
is needed for that, once) into a folder of the ONNX cache that the
:class:`~bot.config.Config` names, keyed by the model's files. The export is
checked against sentence-transformers on probe sentences (cosine ≥
:data:`MIN_EXPORT_COSINE`) and otherwise not used; a model that cannot be
exported is remembered, so later runs do not try again. An int8-quantised
copy (:func:`ensure_quantised`) is made the first time it is asked for:
faster, within about 0.99 cosine, but it can swap near-tied answers, so it
is used only when asked for, for the seeds only.
The exported files are run by :mod:`bot.backend.onnx`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DEFAULT_MODEL, prepare_libraries
from . import DEFAULT_ALIASES, resolve_model
from .onnx import EXACT, QUANTISED, OnnxEncoder, unit_rows
from .sentence_transformers import dimension_of, load_sentence_transformer

log = logging.getLogger(__name__)

#: Bumped whenever the exported files change meaning; older exports are redone.
ONNX_FORMAT = 1
#: Least cosine between our vectors and sentence-transformers' for an export to be used.
MIN_EXPORT_COSINE = 0.999

#: Sentences embedded at export time and compared with sentence-transformers.
PROBES = (
    "Who taught Sezim to play the dombra?",
    "She was born in 1994 in a small village near Naryn.",
    "Her debut album was released in spring 2016 and topped the charts for eight weeks.",
    "Sezim Baktybekova — певица из Кыргызстана; 她的歌很好听. Café, naïve, Zürich!",
    "ok",
    "",
    " ".join(["The concert hall was full of fans who had travelled from every corner of the country."] * 30),
)


class ExportUnsupported(RuntimeError):
    """The model cannot be run through ONNX; the reason says why (remembered in the cache)."""


class ExportToolsMissing(RuntimeError):
    """Exporting needs a package that is not installed (not remembered: it may be installed later)."""


# -- the cache folder ------------------------------------------------------------


def _fingerprint(name: str) -> str:
    """What the export depends on: the model's files (names, sizes, times), or its name."""
    digest = hashlib.sha256(f"format {ONNX_FORMAT}\n".encode())
    source = Path(resolve_model(name))
    if source.is_dir():
        digest.update(str(source.resolve()).encode())
        for path in sorted(source.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(source)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    else:
        digest.update(name.encode())
    return digest.hexdigest()[:16]


def onnx_dir(name: str, root: Path) -> Path:
    """The folder under ``root`` of model ``name``'s ONNX export (whether or not it exists yet)."""
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name.rstrip("/")).name or "model")
    slug = DEFAULT_MODEL if name in DEFAULT_ALIASES else slug
    return Path(root) / f"{slug}-{_fingerprint(name)}"


def is_unsupported(name: str, root: Path) -> bool:
    """True when an earlier attempt found that model ``name`` cannot be exported."""
    return (onnx_dir(name, root) / "unsupported.json").is_file()


@contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_onnx_export(name: str, root: Path) -> Path:
    """The folder under ``root`` with model ``name`` exported to ONNX; exports it on first use.

    Raises :class:`ExportUnsupported` when the model cannot be exported (the
    reason is remembered, so the next run does not try again).
    """
    folder = onnx_dir(name, root)
    if (folder / "meta.json").is_file():
        return folder
    marker = folder / "unsupported.json"
    if marker.is_file():
        raise ExportUnsupported(json.loads(marker.read_text(encoding="utf-8")).get("reason", "unknown"))
    with _export_lock(folder):
        if (folder / "meta.json").is_file():  # another process finished it while we waited
            return folder
        work = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        started = time.perf_counter()
        log.info("Preparing the embedding model %s for fast answers: exporting it to ONNX, once; "
                 "this takes a while, and later starts reuse %s", name, folder)
        try:
            _export(name, work)
        except ExportUnsupported as problem:
            shutil.rmtree(work, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"reason": str(problem)}), encoding="utf-8")
            raise
        except Exception:
            shutil.rmtree(work, ignore_errors=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(work, folder)
        log.info("Exported %s to ONNX in %.1fs", name, time.perf_counter() - started)
    return folder


# -- the export ------------------------------------------------------------------


@dataclass(frozen=True)
class _Exportable:
    """The parts of a sentence-transformers model that the export and the encoder need."""

    tokenizer: object  # a transformers fast tokenizer
    network: object  # the transformer (a torch module)
    input_names: list[str]
    pooling: str
    normalize: bool


def _export(name: str, work: Path) -> None:
    """Export, optimise, quantise and check model ``name`` into the folder ``work``."""
    _require_export_tools()
    model = load_sentence_transformer(name, device="cpu")
    parts = _exportable_parts(model)
    parts.tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
    raw = work / "raw.onnx"
    _trace(parts, raw)
    meta = {
        "format": ONNX_FORMAT,
        "model": name,
        "source": resolve_model(name),
        "dimension": int(dimension_of(model)),
        "max_length": int(model.max_seq_length or parts.tokenizer.model_max_length),
        "pooling": parts.pooling,
        "normalize": parts.normalize,
        "inputs": parts.input_names,
        "pad_id": int(parts.tokenizer.pad_token_id),
        "pad_token": str(parts.tokenizer.pad_token),
    }
    expected = model.encode(list(PROBES), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)

    def probe(variant: str) -> float:
        got = OnnxEncoder(work, variant, meta=meta).encode(PROBES, batch_size=4)
        return round(float(np.sum(unit_rows(got) * unit_rows(expected), axis=1).min()), 6)

    fp32 = work / EXACT
    if not (_optimise(raw, fp32, parts.network.config) and probe(EXACT) >= MIN_EXPORT_COSINE):
        shutil.copyfile(raw, fp32)  # the graph as exported: slower than a fused one, but right
    raw.unlink()
    meta[f"probe_cosine_{EXACT}"] = probe(EXACT)
    if meta[f"probe_cosine_{EXACT}"] < MIN_EXPORT_COSINE:
        raise ExportUnsupported(
            f"its ONNX vectors differ from sentence-transformers' (cosine {meta[f'probe_cosine_{EXACT}']:.4f})"
        )
    # The int8 copy is made only when it is asked for (ensure_quantised): most
    # bots never use it, and quantising adds seconds to every first start.
    (work / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _require_export_tools() -> None:
    prepare_libraries()  # offline, quiet: before sentence-transformers and transformers are imported
    try:
        import onnx  # noqa: F401 - torch.onnx.export and the quantiser need it
        import onnxruntime  # noqa: F401
        import sentence_transformers  # noqa: F401
        import tokenizers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise ExportToolsMissing(
            f"exporting needs torch, sentence-transformers, onnx and onnxruntime ({error})"
        ) from None


def _exportable_parts(model) -> _Exportable:
    """What the export needs from ``model``, or ExportUnsupported saying what it lacks."""
    modules = [type(module).__name__ for module in model]
    if modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ExportUnsupported(f"its modules are {modules}, not Transformer + Pooling (+ Normalize)")
    transformer, pooling = model[0], model[1]
    mode = _pooling_mode(pooling)
    tokenizer = getattr(transformer, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    network = getattr(transformer, "auto_model", None) or getattr(transformer, "model", None)
    if backend is None or network is None or not getattr(tokenizer, "pad_token", None):
        raise ExportUnsupported("it has no fast tokenizer with a padding token, or no plain transformer")
    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    if input_names[:2] != ["input_ids", "attention_mask"]:
        raise ExportUnsupported(f"its tokenizer gives {tokenizer.model_input_names}")
    return _Exportable(tokenizer, network, input_names, mode, modules[-1] == "Normalize")


def _trace(parts: _Exportable, raw: Path) -> None:
    """Trace the transformer to the ONNX graph ``raw`` (token vectors out; pooling is ours)."""
    import torch

    network, input_names = parts.network, parts.input_names
    config = network.config
    previous = getattr(config, "_attn_implementation", None)
    try:  # plain attention traces into ONNX without shape-specialised branches
        network.set_attn_implementation("eager")
    except Exception:  # noqa: BLE001 - older transformers: the config field is enough
        config._attn_implementation = "eager"

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(input_names, inputs, strict=True))).last_hidden_state

    example = parts.tokenizer(
        ["a short one", "and a somewhat longer second sentence"], padding=True, return_tensors="pt"
    )
    axes = {0: "batch", 1: "tokens"}
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes; the probes check the result
            torch.onnx.export(
                TokenEmbeddings(network.eval()),
                tuple(example[n] for n in input_names),
                str(raw),
                input_names=input_names,
                output_names=["token_embeddings"],
                dynamic_axes={n: axes for n in [*input_names, "token_embeddings"]},
                opset_version=17,
                dynamo=False,
            )
    except Exception as error:  # noqa: BLE001 - any architecture the exporter cannot trace
        raise ExportUnsupported(f"torch.onnx.export failed ({type(error).__name__}: {error})") from None
    finally:
        if previous is not None:
            config._attn_implementation = previous


def ensure_quantised(folder: Path) -> bool:
    """Add the int8 copy of the exact graph to an export ``folder``, once; False when it cannot be made.

    Only the "int8" document precision uses it. Its vectors are checked
    against the exact graph's (which match sentence-transformers') on the
    probe sentences, and the cosine is recorded in ``meta.json``.
    """
    if (folder / QUANTISED).is_file():
        return True
    with _export_lock(folder):
        if (folder / QUANTISED).is_file():  # another process made it while we waited
            return True
        work = folder / f".{QUANTISED}.tmp-{os.getpid()}"
        try:
            _quantise(folder / EXACT, work)
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            exact = OnnxEncoder(folder, EXACT, meta=meta).encode(PROBES, batch_size=4)
            os.replace(work, folder / QUANTISED)
            quantised = OnnxEncoder(folder, QUANTISED, meta=meta).encode(PROBES, batch_size=4)
            meta[f"probe_cosine_{QUANTISED}"] = round(
                float(np.sum(unit_rows(quantised) * unit_rows(exact), axis=1).min()), 6
            )
            staged = folder / f".meta.json.tmp-{os.getpid()}"
            staged.write_text(json.dumps(meta, indent=1), encoding="utf-8")
            os.replace(staged, folder / "meta.json")
            return True
        except Exception as error:  # noqa: BLE001 - optional: the exact graph serves every use
            log.info("No int8 copy of the model in %s (%s); the exact graph serves every use.", folder, error)
            work.unlink(missing_ok=True)
            (folder / QUANTISED).unlink(missing_ok=True)
            return False


def _quantise(exact: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime advises (on the root logger) a pre-processing step that
    # is for static image models; it means nothing to the artist's team.
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(exact), str(target), per_channel=True, weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _pooling_mode(pooling) -> str:
    """The one pooling mode we can reproduce in numpy, or ExportUnsupported."""
    config = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        modes = [mode]
    elif isinstance(mode, (list, tuple)):
        modes = list(mode)
    else:  # older sentence-transformers: one flag per mode
        modes = [key[len("pooling_mode_"):].removesuffix("_token").removesuffix("_tokens")
                 for key, value in config.items() if key.startswith("pooling_mode_") and value is True]
    aliases = {"mean": "mean", "cls": "cls", "max": "max", "mean_sqrt_len": "mean_sqrt_len",
               "mean_sqrt_len_tokens": "mean_sqrt_len"}
    if len(modes) != 1 or modes[0] not in aliases:
        raise ExportUnsupported(f"its pooling is {modes or config}, not one of mean, cls, max, mean_sqrt_len")
    return aliases[modes[0]]


def _optimise(raw: Path, target: Path, config) -> bool:
    """Fuse attention, layer norms and GELU of a BERT-like graph into ``target``; False when not done."""
    if getattr(config, "model_type", "") in ("bert", "roberta", "xlm-roberta"):
        try:
            from onnxruntime.transformers import optimizer

            optimised = optimizer.optimize_model(
                str(raw), model_type="bert", num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size), opt_level=1,
            )
            optimised.save_model_to_file(str(target))
            return True
        except Exception as error:  # noqa: BLE001 - the plain graph is still right, only slower
            log.info("Could not optimise the ONNX graph (%s); using it as exported.", error)
    return False
