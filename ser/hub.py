"""Publishing on the Hugging Face Hub: a trained checkpoint with its code and model card, and a Gradio Space.

    python -m ser.hub push runs/release/model USER/NAME --run-dir runs/release [--private]
    python -m ser.hub push runs/release/model USER/NAME --run-dir runs/release --summary runs/emobox/summary.json
    python -m ser.hub space USER/SPACE --model USER/NAME [--private]

The token is huggingface_hub's usual one: the HF_TOKEN environment variable, else the one saved by
`hf auth login`. It needs write access. HF_ENDPOINT points the client at another Hub.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import yaml
from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError
from httpx2 import TransportError  # the HTTP client of huggingface_hub 2.x

from .card import LICENSE, model_card_from_run

ROOT = Path(__file__).resolve().parent.parent
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
REQUIRED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
SPACE_COLORS = ("indigo", "pink")


class HubError(RuntimeError):
    """A publishing step that cannot go ahead; the message says why and what to do."""


def checkpoint_files(model_dir: Path | str) -> list[Path]:
    """The files of a checkpoint folder to upload, after checking that it loads with `trust_remote_code`.

    Raises `HubError` for a folder with pickle weights (they run code when loaded, so they are never
    published), without safetensors weights, or whose config.json has no `auto_map` to code files beside it.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise HubError(f"{model_dir} is not a folder; give the checkpoint folder written by save_pretrained")
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    pickles = [p.name for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise HubError(f"{model_dir} holds pickle files ({', '.join(pickles)}); only safetensors weights are "
                       "published: delete them or save the model again with save_pretrained")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise HubError(f"{model_dir} lacks {', '.join(missing)}: it is not a complete checkpoint "
                       "(save the model and ser.new_feature_extractor(config) with save_pretrained)")
    config = json.loads((model_dir / "config.json").read_text())
    auto_map = config.get("auto_map", {})
    if "AutoModelForAudioClassification" not in auto_map:
        raise HubError(f"{model_dir / 'config.json'} has no auto_map for AutoModelForAudioClassification, so "
                       "trust_remote_code could not load it; save it with `import ser` done first")
    code = {reference.split(".")[0] + ".py" for reference in auto_map.values()}
    missing = sorted(name for name in code if not (model_dir / name).is_file())
    if missing:
        raise HubError(f"{model_dir} lacks {', '.join(missing)}, the code its config.json's auto_map points to")
    return files


def hub_token(token: str | None = None) -> str:
    """`token`, else huggingface_hub's usual one (HF_TOKEN, then `hf auth login`'s); `HubError` if none."""
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (it needs write access)")
    return token


def _api(token: str | None) -> HfApi:
    return HfApi(token=hub_token(token))


def _hub_call(api: HfApi, what: str, call, *args, **kwargs):
    """Run one Hub request, turning network and HTTP failures into `HubError` with a one-line cause."""
    try:
        return call(*args, **kwargs)
    except (TransportError, OfflineModeIsEnabled) as error:
        raise HubError(f"cannot reach the Hub at {api.endpoint} to {what}: {error}") from error
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        first = str(error).strip().splitlines()[0]
        hint = {401: " (check the token: HF_TOKEN or `hf auth login`)",
                403: " (the token needs write access to this namespace)"}.get(status, "")
        server = f": {error.server_message.strip()}" if getattr(error, "server_message", None) else ""
        raise HubError(f"the Hub refused to {what}: {first}{server}{hint}".replace("\n", " ")) from error


def push_model(model_dir: Path | str, repo_id: str, private: bool = False, run_dir: Path | str | None = None,
               token: str | None = None, summary: Path | str | None = None) -> str:
    """Create (or update) a model repository with the checkpoint, its code, a model card and figures.

    Args:
        model_dir: the checkpoint folder (config.json with auto_map, the code files, model.safetensors,
            preprocessor_config.json). Its own README.md, if any, is uploaded instead of a generated card.
        repo_id: "user/name" or "org/name".
        private: make the repository private (also an existing one; False never makes one public).
        run_dir: the training run's folder: its metrics.json, confusion_matrix.png (and summary.json,
            if it is a cross-validation folder) are uploaded and reported in the card.
        token: a Hub token; default HF_TOKEN or the saved login.
        summary: a cross-validation summary.json to report too (e.g. the EmoBox folds of the same recipe).

    Returns the repository's URL. Raises `HubError` with a clear message when anything is missing or fails.
    """
    model_dir = Path(model_dir)
    uploads = {path.name: path for path in checkpoint_files(model_dir)}
    images = {}
    run_dir = Path(run_dir) if run_dir is not None else None
    summary = Path(summary) if summary is not None else None
    if summary is not None and not summary.is_file():
        raise HubError(f"no summary file at {summary}")
    if run_dir is not None:
        if not run_dir.is_dir():
            raise HubError(f"the run folder {run_dir} does not exist")
        if (run_dir / "metrics.json").is_file():
            uploads["metrics.json"] = run_dir / "metrics.json"
            if (run_dir / "confusion_matrix.png").is_file():
                uploads["confusion_matrix.png"] = run_dir / "confusion_matrix.png"
                images["checkpoint"] = "confusion_matrix.png"
        if summary is None and (run_dir / "summary.json").is_file():
            summary = run_dir / "summary.json"
        if "metrics.json" not in uploads and summary is None:
            raise HubError(f"{run_dir} holds neither metrics.json nor summary.json; give the folder of the run "
                           "that trained this model, or leave out the run folder")
    if summary is not None:
        uploads["cross_validation_summary.json"] = summary
        figure = summary.parent / "confusion_matrix.png"
        if figure.is_file() and figure != uploads.get("confusion_matrix.png"):
            uploads["cross_validation_confusion_matrix.png"] = figure
            images["cross_validation"] = "cross_validation_confusion_matrix.png"

    if "README.md" in uploads:
        card = uploads.pop("README.md").read_bytes()
    else:
        try:
            card = model_card_from_run(repo_id, model_dir, run_dir, summary, images).encode()
        except (KeyError, TypeError, ValueError) as error:  # a metrics file not written by `python -m train`
            raise HubError(f"cannot write the model card from {run_dir or summary}: unexpected metrics file "
                           f"({type(error).__name__}: {error})") from error
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in uploads.items()]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card))

    api = _api(token)
    url = _hub_call(api, f"create the model repository {repo_id}", api.create_repo, repo_id, private=private,
                    exist_ok=True)
    if private:  # create_repo leaves an existing repository's visibility alone
        _hub_call(api, f"make {repo_id} private", api.update_repo_settings, repo_id, private=True)
    _hub_call(api, f"upload to {repo_id}", api.create_commit, repo_id, operations=operations,
              commit_message="Upload speech emotion recognition model")
    return str(url)


def space_readme(space_id: str, model_id: str, endpoint: str) -> str:
    """The Space's README.md: the YAML front matter the Hub reads to build it, and a short description."""
    import gradio

    meta = {
        "title": "Speech Emotion Recognition",
        "emoji": "🎭",
        "colorFrom": SPACE_COLORS[0],
        "colorTo": SPACE_COLORS[1],
        "sdk": "gradio",
        "sdk_version": gradio.__version__,
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "app_file": "app.py",
        "pinned": False,
        "license": LICENSE,
        "short_description": "Emotion in acted speech, 8 classes",
        "models": [model_id],
        "preload_from_hub": [model_id],
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return (f"---\n{front}---\n\n# Speech emotion recognition\n\n"
            "Record yourself or upload a clip and see which of 8 emotions (neutral, calm, happy, sad, angry, "
            "fearful, disgust, surprised) the model hears, with a timeline for longer recordings.\n\n"
            f"The model is [{model_id}]({endpoint}/{model_id}) (the `SER_MODEL` variable of this Space), a small "
            "CNN trained on acted speech. It is a demo, not a judge of people: do not use it to make decisions about "
            "anyone. Its model card names the corpora it learned from, its accuracy on voices it never heard and "
            "its limits.\n\n"
            "The example clips are from RAVDESS (Livingstone & Russo 2018, PLoS ONE 13(5): e0196391), "
            "CC BY-NC-SA 4.0.\n")


def space_files(root: Path = ROOT) -> dict[str, Path]:
    """Repository path -> local file for a Space: the app, the `ser` package's code, the requirements
    and the example clips with their license. The embedded default_model is left out: the Space loads
    the pushed model named by its SER_MODEL variable."""
    missing = [name for name in ("app.py", "requirements.txt", "ser/__init__.py") if not (root / name).is_file()]
    if missing:
        raise HubError(f"{root} lacks {', '.join(missing)}: push a Space from a checkout of this project")
    files = {name: root / name for name in ("app.py", "requirements.txt")}
    for path in sorted((root / "ser").rglob("*.py")):
        relative = path.relative_to(root)
        if "default_model" not in relative.parts and "__pycache__" not in relative.parts:
            files[relative.as_posix()] = path
    examples = root / "tests" / "fixtures" / "ravdess"
    for path in sorted(examples.rglob("*")):
        if path.is_file():
            files[path.relative_to(root).as_posix()] = path
    return files


def push_space(space_id: str, model_id: str, private: bool = False, token: str | None = None,
               root: Path | str = ROOT) -> str:
    """Create or update a Gradio Space that serves `app.py` with the model `model_id`.

    Args:
        space_id: "user/space".
        model_id: the Hub id of a pushed model; set as the Space's SER_MODEL variable and preloaded at build.
        private: make the Space private (also an existing one; False never makes one public).
        token: a Hub token; default HF_TOKEN or the saved login.
        root: the project checkout to take app.py, ser/ and requirements.txt from.

    Returns the Space's URL. Raises `HubError` when the model is not on the Hub or a step fails.
    """
    files = space_files(Path(root))
    api = _api(token)
    try:
        model = _hub_call(api, f"look up the model {model_id}", api.model_info, model_id)
    except HubError as error:
        if isinstance(error.__cause__, RepositoryNotFoundError):
            raise HubError(f"the model {model_id} is not on the Hub (or the token cannot see it): push it first "
                           "with `python -m ser.hub push`") from error.__cause__
        raise
    if model.private:
        warnings.warn(f"{model_id} is private: add a read token as the Space secret HF_TOKEN, or the Space "
                      "cannot download it", stacklevel=2)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in files.items()]
    operations += [
        CommitOperationAdd(path_in_repo="packages.txt", path_or_fileobj=b"ffmpeg\n"),
        CommitOperationAdd(path_in_repo="README.md",
                           path_or_fileobj=space_readme(space_id, model_id, api.endpoint).encode()),
    ]
    url = _hub_call(api, f"create the Space {space_id}", api.create_repo, space_id, repo_type="space",
                    space_sdk="gradio", private=private, exist_ok=True)
    if private:
        _hub_call(api, f"make {space_id} private", api.update_repo_settings, space_id, repo_type="space",
                  private=True)
    _hub_call(api, f"upload to the Space {space_id}", api.create_commit, space_id, repo_type="space",
              operations=operations, commit_message=f"Deploy the emotion recognition app with {model_id}")
    _hub_call(api, f"set SER_MODEL in the Space {space_id}", api.add_space_variable, space_id, "SER_MODEL", model_id,
              description="Hub id of the model the app loads")
    return str(url)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ser.hub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push", help="upload a checkpoint with its code, model card and figures")
    push.add_argument("model_dir", type=Path, help="checkpoint folder, or a training run folder holding model/")
    push.add_argument("repo_id", help="USER/NAME of the model repository")
    push.add_argument("--run-dir", type=Path, help="training run folder with metrics.json and confusion_matrix.png")
    push.add_argument("--summary", type=Path, help="cross-validation summary.json to report in the card too")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    space = commands.add_parser("space", help="create or update a Gradio Space running app.py")
    space.add_argument("space_id", help="USER/SPACE")
    space.add_argument("--model", required=True, help="USER/NAME of the pushed model the Space serves")
    space.add_argument("--private", action="store_true", help="create the Space as private")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "push":
            model_dir, run_dir = args.model_dir, args.run_dir
            # A training run folder (runs/release) holds the checkpoint in model/ beside its metrics.
            if not (model_dir / "config.json").exists() and (model_dir / "model" / "config.json").exists():
                model_dir, run_dir = model_dir / "model", run_dir or model_dir
            url = push_model(model_dir, args.repo_id, private=args.private, run_dir=run_dir, summary=args.summary)
        else:
            url = push_space(args.space_id, args.model, private=args.private)
    except HubError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
