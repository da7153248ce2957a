"""Tests of the benchmark annotation readers (eval.sets): small files in each dataset's real format."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from internvid.eval import sets as eval_sets
from internvid.eval.sets import (
    EvalSet,
    detect_format,
    kinetics_file_name,
    load,
    read_anet,
    read_class_list,
    read_didemo,
    read_id_list,
    read_kinetics,
    read_lsmdc,
    read_msrvtt_csv,
    read_msrvtt_json,
    read_msvd,
)


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def _pairs(data: EvalSet) -> list[tuple[str, str]]:
    return [(data.videos[v].name, t) for t, v in zip(data.texts, data.text_to_video, strict=True)]


# CLIP4Clip's MSRVTT_JSFUSION_test.csv: its header and the shape of its rows
JSFUSION = (
    "key,vid_key,video_id,sentence\n"
    "ret0,msr7579,video7579,a girl wearing red top and black trousers is streaming\n"
    "ret1,msr7725,video7725,young people sit around the edges of a room clapping\n"
    'ret2,msr9258,video9258,"a person is connecting something to system, slowly"\n'
)


def test_msrvtt_jsfusion_csv(tmp_path: Path) -> None:
    ann = tmp_path / "MSRVTT_JSFUSION_test.csv"
    ann.write_text(JSFUSION)
    vids = tmp_path / "MSRVTT" / "videos" / "all"
    _touch(vids, "video7579.mp4", "video7725.webm")  # video9258 is missing
    data = read_msrvtt_csv(ann, vids)
    assert [p.name for p in data.videos] == ["video7579.mp4", "video7725.webm", "video9258.mp4"]
    assert data.videos[0] == vids / "video7579.mp4" and data.videos[2] == vids / "video9258.mp4"
    assert data.texts[2] == "a person is connecting something to system, slowly"
    assert data.text_to_video == [0, 1, 2] and data.task == "retrieval"
    assert detect_format(ann) == "msrvtt-csv"
    kept, dropped = data.drop_missing()
    assert dropped == 1 and [p.name for p in kept.videos] == ["video7579.mp4", "video7725.webm"]
    assert kept.texts == data.texts[:2] and kept.text_to_video == [0, 1]
    assert read_id_list(ann) == ["video7579", "video7725", "video9258"]


def test_msrvtt_data_json(tmp_path: Path) -> None:
    ann = tmp_path / "MSRVTT_data.json"
    ann.write_text(
        json.dumps(
            {
                "info": {"year": "2016"},
                "videos": [
                    {"category": 9, "video_id": "video0", "split": "train", "id": 0},
                    {"category": 16, "video_id": "video7579", "split": "test", "id": 7579},
                    {"category": 3, "video_id": "video7725", "split": "test", "id": 7725},
                ],
                "sentences": [
                    {"caption": "a car is shown", "video_id": "video0", "sen_id": 0},
                    {"caption": "a girl streams", "video_id": "video7579", "sen_id": 1},
                    {"caption": "people clap", "video_id": "video7725", "sen_id": 2},
                    {"caption": "a girl in red", "video_id": "video7579", "sen_id": 3},
                ],
            }
        )
    )
    every = read_msrvtt_json(ann)
    assert [p.name for p in every.videos] == ["video0.mp4", "video7579.mp4", "video7725.mp4"]
    assert every.text_to_video == [0, 1, 1, 2]  # grouped by video, in the videos' order
    assert every.texts == ["a car is shown", "a girl streams", "a girl in red", "people clap"]
    split = tmp_path / "MSRVTT_JSFUSION_test.csv"
    split.write_text(
        "key,vid_key,video_id,sentence\nret0,msr7725,video7725,x\nret1,msr7579,video7579,y\n"
    )
    one_k = load(ann, ids=read_id_list(split))  # 1k-A picked by the JSFusion ids, their order
    assert _pairs(one_k) == [
        ("video7725.mp4", "people clap"),
        ("video7579.mp4", "a girl streams"),
        ("video7579.mp4", "a girl in red"),
    ]
    assert detect_format(ann) == "msrvtt-json"
    with pytest.raises(ValueError, match="video9"):
        read_msrvtt_json(ann, ids=["video9"])


def test_umt_style_json_and_paragraphs(tmp_path: Path) -> None:
    # the UMT / VINDLU files: msrvtt_test1k.json, didemo_ret_test.json (caption lists)
    ann = tmp_path / "didemo_ret_test.json"
    rows = [
        {"video": "a.mp4", "caption": ["the cat jumps", "the cat lands"], "duration": 30},
        {"video": "b.mp4", "caption": "a dog barks"},
    ]
    ann.write_text(json.dumps(rows))
    assert detect_format(ann) == "generic"
    sentences = load(ann)
    assert _pairs(sentences) == [
        ("a.mp4", "the cat jumps"),
        ("a.mp4", "the cat lands"),
        ("b.mp4", "a dog barks"),
    ]
    para = load(ann, paragraphs=True, videos=tmp_path / "v")
    assert _pairs(para) == [("a.mp4", "the cat jumps the cat lands"), ("b.mp4", "a dog barks")]
    assert para.videos[0] == tmp_path / "v" / "a.mp4"


def test_msvd_raw_captions_pickle(tmp_path: Path) -> None:
    captions = {
        "-4wsuPCjDBc_5_15": [["a", "squirrel", "is", "eating", "a", "peanut"], ["a", "chipmunk"]],
        "zzit5b_-ukg_5_20": [["a", "man", "plays", "a", "guitar"]],
        "-8y1Q0rA3n8_95_102": [["a", "woman", "slices", "a", "tomato"]],
    }
    ann = tmp_path / "raw-captions.pkl"
    ann.write_bytes(pickle.dumps(captions))
    split = tmp_path / "test_list.txt"
    split.write_text("zzit5b_-ukg_5_20\n-4wsuPCjDBc_5_15\n")
    vids = tmp_path / "YouTubeClips"
    _touch(vids, "-4wsuPCjDBc_5_15.avi", "zzit5b_-ukg_5_20.avi")
    data = read_msvd(ann, vids, read_id_list(split))
    assert _pairs(data) == [
        ("zzit5b_-ukg_5_20.avi", "a man plays a guitar"),
        ("-4wsuPCjDBc_5_15.avi", "a squirrel is eating a peanut"),
        ("-4wsuPCjDBc_5_15.avi", "a chipmunk"),
    ]
    assert all(p.is_file() for p in data.videos)
    assert len(read_msvd(ann, vids).videos) == 3  # no split: every video
    assert detect_format(ann) == "msvd"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"x": Path("/etc")}))  # needs a class: refused
    with pytest.raises(pickle.UnpicklingError):
        read_msvd(evil, vids)


def test_msvd_corpus_csv(tmp_path: Path) -> None:
    ann = tmp_path / "MSR Video Description Corpus.csv"
    ann.write_text(
        "VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description\n"
        "mv89psg6zh4,33,46,1,clean,17,English,A bird is bathing in a sink.\n"
        "mv89psg6zh4,33,46,2,unverified,25,German,Ein Vogel badet.\n"
        'mv89psg6zh4,33,46,3,clean,18,English,"A bird splashes, then flies."\n'
        "60x_yxy7Sfw,1,9,4,clean,30,English,A man is riding a bike.\n"
    )
    assert detect_format(ann) == "msvd"
    data = load(ann, videos=tmp_path)
    assert _pairs(data) == [
        ("mv89psg6zh4_33_46.avi", "A bird is bathing in a sink."),
        ("mv89psg6zh4_33_46.avi", "A bird splashes, then flies."),
        ("60x_yxy7Sfw_1_9.avi", "A man is riding a bike."),
    ]
    assert [p.name for p in read_msvd(ann, ids=["60x_yxy7Sfw_1_9"]).videos] == [
        "60x_yxy7Sfw_1_9.avi"
    ]


def test_didemo_test_data(tmp_path: Path) -> None:
    rows = [
        {
            "num_segments": 6,
            "annotation_id": 11,
            "description": "the cat jumps on the couch",
            "reference_description": None,
            "video": "10015567@N08_3655084291_d8b58466fa.mov",
            "times": [[2, 2], [2, 2], [2, 3], [2, 2]],
            "dl_link": "https://www.flickr.com/video_download.gne?id=3655084291",
        },
        {
            "num_segments": 6,
            "annotation_id": 12,
            "description": "a dog runs by",
            "reference_description": None,
            "video": "13151096@N00_4331458291_e3e30d8ccd.mp4",
            "times": [[0, 0], [0, 1], [0, 0], [0, 0]],
            "dl_link": "https://www.flickr.com/video_download.gne?id=4331458291",
        },
        {
            "num_segments": 6,
            "annotation_id": 13,
            "description": "camera pans left",
            "reference_description": None,
            "video": "10015567@N08_3655084291_d8b58466fa.mov",
            "times": [[4, 5], [4, 4], [4, 4], [4, 4]],
            "dl_link": "https://www.flickr.com/video_download.gne?id=3655084291",
        },
    ]
    ann = tmp_path / "test_data.json"
    ann.write_text(json.dumps(rows))
    vids = tmp_path / "didemo"
    _touch(vids, "10015567@N08_3655084291_d8b58466fa.mp4")  # converted from .mov
    para = read_didemo(ann, vids)
    assert _pairs(para) == [
        ("10015567@N08_3655084291_d8b58466fa.mp4", "the cat jumps on the couch camera pans left"),
        ("13151096@N00_4331458291_e3e30d8ccd.mp4", "a dog runs by"),
    ]
    assert para.videos[0].is_file() and not para.videos[1].exists()
    sentences = load(ann, videos=vids, paragraphs=False)
    assert sentences.texts == ["the cat jumps on the couch", "camera pans left", "a dog runs by"]
    assert sentences.text_to_video == [0, 0, 1]
    only = read_didemo(ann, vids, ids=["13151096@N00_4331458291_e3e30d8ccd.mp4"])
    assert only.texts == ["a dog runs by"]
    assert detect_format(ann) == "didemo"


def test_activitynet_val_1(tmp_path: Path) -> None:
    ann = tmp_path / "val_1.json"
    ann.write_text(
        json.dumps(
            {
                "v_uqiMw7tQ1Cc": {
                    "duration": 55.15,
                    "timestamps": [[0.28, 55.15], [13.79, 54.32]],
                    "sentences": [
                        "A weight lifting tutorial is given.",
                        "  The coach helps the guy in red with the proper body placement.",
                    ],
                },
                "v_bXdq2zI1Ms0": {
                    "duration": 73.1,
                    "timestamps": [[0, 10.23]],
                    "sentences": ["Three men are standing on a mat."],
                },
            }
        )
    )
    vids = tmp_path / "anet"
    _touch(vids, "v_uqiMw7tQ1Cc.mp4", "sub/bXdq2zI1Ms0.mkv")  # with and without "v_"
    data = read_anet(ann, vids)
    assert [p.relative_to(vids).as_posix() for p in data.videos] == [
        "v_uqiMw7tQ1Cc.mp4",
        "sub/bXdq2zI1Ms0.mkv",
    ]
    # joined with one space as the official / CLIP4Clip code: leading spaces kept
    assert data.texts[0] == (
        "A weight lifting tutorial is given.   The coach helps the guy in red with the proper "
        "body placement."
    )
    assert data.text_to_video == [0, 1]
    sentences = read_anet(ann, vids, paragraphs=False)
    assert len(sentences.texts) == 3 and sentences.text_to_video == [0, 0, 1]
    assert detect_format(ann) == "anet"


def test_lsmdc_tsv(tmp_path: Path) -> None:
    ann = tmp_path / "LSMDC16_challenge_1000_publictect.csv"
    ann.write_text(
        "1010_TITANIC_00.41.32.072-00.41.40.196\t00.41.32.072\t00.41.40.196\t00.41.32.072\t"
        "00.41.40.196\tSOMEONE stands at the railing, looking out.\n"
        "0001_American_Beauty_00.00.51.926-00.00.54.129\t00.00.51.926\t00.00.54.129\t"
        '00.00.51.926\t00.00.54.129\tSOMEONE\'s "wife" jogs past.\n'
    )
    vids = tmp_path / "avi"
    _touch(vids, "1010_TITANIC/1010_TITANIC_00.41.32.072-00.41.40.196.avi")
    data = read_lsmdc(ann, vids)
    assert data.videos[0] == vids / "1010_TITANIC/1010_TITANIC_00.41.32.072-00.41.40.196.avi"
    # not on disk: where the release would keep it (one folder per movie)
    assert data.videos[1] == (
        vids / "0001_American_Beauty/0001_American_Beauty_00.00.51.926-00.00.54.129.avi"
    )
    assert data.texts == [
        "SOMEONE stands at the railing, looking out.",
        'SOMEONE\'s "wife" jogs past.',
    ]
    assert detect_format(ann) == "lsmdc"
    bad = tmp_path / "bad.tsv"
    bad.write_text("only\tthree\tfields\n")
    with pytest.raises(ValueError, match="6 tab-separated"):
        read_lsmdc(bad)


KINETICS_VAL = (
    "label,youtube_id,time_start,time_end,split\n"
    "abseiling,0wR5jVB-WPk,417,427,val\n"
    "air drumming,--nQbRBEz2s,104,114,val\n"
    '"passing American football (in game)",-6jp7uZIJoA,0,10,val\n'
    "abseiling,3caPS4FHFF8,36,46,val\n"
)


def test_kinetics_val_csv_and_class_lists(tmp_path: Path) -> None:
    assert kinetics_file_name("0wR5jVB-WPk", "417", "427.0") == "0wR5jVB-WPk_000417_000427.mp4"
    ann = tmp_path / "val.csv"
    ann.write_text(KINETICS_VAL)
    vids = tmp_path / "val"
    # class folders (the download scripts' layout) and a flat file in another container
    _touch(vids, "abseiling/0wR5jVB-WPk_000417_000427.mp4", "--nQbRBEz2s_000104_000114.webm")
    data = read_kinetics(ann, vids)
    assert data.task == "classification"
    assert data.videos[0] == vids / "abseiling/0wR5jVB-WPk_000417_000427.mp4"
    assert data.videos[1] == vids / "--nQbRBEz2s_000104_000114.webm"
    assert data.videos[2] == vids / "-6jp7uZIJoA_000000_000010.mp4"  # missing: the default name
    assert data.labels == [
        "abseiling",
        "air drumming",
        "passing American football (in game)",
        "abseiling",
    ]
    assert data.classes == ["abseiling", "air drumming", "passing American football (in game)"]
    assert detect_format(ann) == "kinetics"

    txt = tmp_path / "labels.txt"
    txt.write_text("abseiling\nair_drumming\n\npassing American football (in game)\nzumba\n")
    csv_ = tmp_path / "kinetics_400_labels.csv"
    csv_.write_text(
        'id,name\n0,abseiling\n1,air drumming\n2,"passing American football (in game)"\n3,zumba\n'
    )
    js = tmp_path / "kinetics_classnames.json"
    js.write_text(
        json.dumps(
            {
                '"zumba"': 3,
                '"abseiling"': 0,
                '"passing American football (in game)"': 2,
                '"air drumming"': 1,
            }
        )
    )
    expected = ["abseiling", "air drumming", "passing American football (in game)", "zumba"]
    for path in (txt, csv_, js):
        assert read_class_list(path) == expected
    with_classes = load(ann, videos=vids, classes=csv_)
    assert with_classes.classes == expected and with_classes.labels == data.labels
    dup = tmp_path / "dup.txt"
    dup.write_text("abseiling\nAbseiling\n")
    with pytest.raises(ValueError, match="repeat"):
        read_class_list(dup)


def test_generic_classification_and_detection(tmp_path: Path) -> None:
    ann = tmp_path / "k400_val.jsonl"
    ann.write_text('{"video": "a.mp4", "label": "abseiling"}\n{"video": "b.mp4", "label": 3}\n')
    data = load(ann)
    assert data.task == "classification" and data.labels == ["abseiling", 3]
    assert [p.name for p in data.videos] == ["a.mp4", "b.mp4"]
    with pytest.raises(ValueError, match="no captions"):
        load(ann, task="retrieval")
    other = tmp_path / "notes.txt"
    other.write_text("x\n")
    with pytest.raises(ValueError, match="--format"):
        detect_format(other)
    with pytest.raises(ValueError, match="unknown format"):
        load(ann, "nope")
    assert set(eval_sets.FORMATS) >= {"msrvtt-csv", "msvd", "didemo", "anet", "lsmdc", "kinetics"}
