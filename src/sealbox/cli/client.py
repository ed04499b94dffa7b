"""The client commands of ``sealbox``: sign in to a server, upload, download, list,
delete and share, with progress bars and resume. They use the SDK (``sealbox.client``)
and nothing of the server.

Profiles (``--profile``, env ``SEALBOX_PROFILE``, default ``default``) are kept one per
file under ``$XDG_CONFIG_HOME/sealbox/profiles/`` (mode 0600: they hold a token).
Unfinished uploads are remembered in ``$XDG_STATE_HOME/sealbox/uploads.json``, so running
the same upload again resumes it.

Exit codes: 0 done; 1 refused (bad input, conflict, too large); 2 usage; 3 not found;
4 authentication (no profile, wrong token, wrong password); 5 the server cannot be
reached; 6 a link that is revoked, expired or used up; 7 rate limited.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import urlparse

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from sealbox.cli.output import console, labelled
from sealbox.client import (
    ApiError,
    AuthenticationError,
    Client,
    GoneError,
    LinkInfo,
    NotFoundError,
    RateLimitedError,
    TransportError,
)
from sealbox.client import Progress as Done

EXIT_REFUSED, EXIT_NOT_FOUND, EXIT_AUTH, EXIT_UNREACHABLE, EXIT_GONE, EXIT_RATE = 1, 3, 4, 5, 6, 7
out = console()
err = console(stderr=True)

ProfileOpt = Annotated[str, typer.Option("--profile", envvar="SEALBOX_PROFILE", help="Which saved sign-in to use")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]

share_app = typer.Typer(help="Create, list and revoke share links.", no_args_is_help=True)
request_app = typer.Typer(help="Upload-request links: let others upload to you.", no_args_is_help=True)


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def profiles_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "sealbox" / "profiles"


def state_file() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / "sealbox" / "uploads.json"


def fail(message: str, code: int) -> NoReturn:
    err.print(labelled("error:", "red", message))
    raise typer.Exit(code)


# The exit code for each kind of refusal; anything else the server refuses is 1.
EXIT_CODES: list[tuple[type[ApiError], int]] = [
    (TransportError, EXIT_UNREACHABLE),
    (AuthenticationError, EXIT_AUTH),
    (NotFoundError, EXIT_NOT_FOUND),
    (GoneError, EXIT_GONE),
    (RateLimitedError, EXIT_RATE),
]


@contextmanager
def api_errors() -> Iterator[None]:
    """One line and a distinct exit code for every way a request can fail."""
    try:
        yield
    except ApiError as exc:
        fail(exc.detail, next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), EXIT_REFUSED))
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_REFUSED)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(path.with_suffix(".tmp"), path)


PROFILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def _profile_path(name: str) -> Path:
    if not PROFILE_NAME.fullmatch(name):
        fail(f"a profile name is 1-64 letters, digits or '_.-': not {name!r}", 2)
    return profiles_dir() / f"{name}.json"


def _profile(name: str) -> dict[str, str]:
    path = _profile_path(name)
    try:
        data: dict[str, str] = json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"not signed in (profile {name!r}): run 'sealbox login URL' first", EXIT_AUTH)
    return data


@contextmanager
def client(profile: str) -> Iterator[Client]:
    saved = _profile(profile)
    with api_errors(), Client(saved["url"], saved["token"], backoff=_backoff()) as sdk:
        yield sdk


def _backoff() -> float:
    """Scale of the pauses between retries (``SEALBOX_CLIENT_BACKOFF``, default 1)."""
    try:
        return float(os.environ.get("SEALBOX_CLIENT_BACKOFF", "1"))
    except ValueError:
        return 1.0


def _secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt(prompt, hide_input=True, err=True))


def _print(data: Any, as_json: bool, text: Callable[[], None]) -> None:
    if as_json:
        out.print_json(json.dumps(data, default=_plain))
    else:
        text()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value))


@contextmanager
def bar(label: str, quiet: bool) -> Iterator[Callable[[Done], None]]:
    if quiet or (not err.is_terminal and os.environ.get("SEALBOX_PROGRESS") != "1"):
        yield lambda done: None
        return
    columns = [BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    # The label is a file name: shown as text, never read as markup or a format string.
    name = TextColumn("{task.description}", markup=False, style="bold")
    with Progress(name, *columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done: progress.update(task, completed=done.done, total=done.total)


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. https://files.example.com")],
    username: Annotated[str, typer.Option("--user", "-u", prompt=True, help="User name")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Sign in and keep the token (in a 0600 file) for the other commands."""
    path = _profile_path(profile)
    password = _secret("Password", password_stdin)
    with api_errors(), Client(url) as sdk:
        token = sdk.login(username, password)
    _write_private(path, json.dumps({"url": url.rstrip("/"), "token": token}))
    said = {"url": url.rstrip("/"), "username": username, "profile": profile}
    _print(said, as_json, lambda: err.print(f"signed in to {url} as {username} (profile {profile!r})", highlight=False))


def whoami(profile: ProfileOpt = "default", as_json: JsonOpt = False) -> None:
    """Who the current profile is signed in as."""
    with client(profile) as sdk:
        me = sdk.whoami()
    _print(asdict(me), as_json, lambda: out.print(f"{me.username} at {sdk.url}", highlight=False))


def _fingerprint(path: Path, url: str) -> str:
    stat = path.stat()
    return f"{url}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _remembered() -> dict[str, str]:
    try:
        data: dict[str, str] = json.loads(state_file().read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data


def _remember(key: str, upload_url: str | None) -> None:
    data = _remembered()
    if upload_url is None:
        data.pop(key, None)
    else:
        data[key] = upload_url
    _write_private(state_file(), json.dumps(data))


def upload(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to upload", exists=True)],
    to: Annotated[str, typer.Option("--to", help="The folder they go to, made if missing (default: the top)")] = "",
    share: Annotated[bool, typer.Option("--share", help="Also create a share link for each file or folder")] = False,
    expires_in: Annotated[int | None, typer.Option(help="Link lifetime in seconds (with --share)")] = None,
    limit: Annotated[int | None, typer.Option(help="Download limit of the link (with --share)")] = None,
    password: Annotated[bool, typer.Option("--password", help="Ask for a link password (with --share)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Upload files, and folders with everything in them, resumably: run the same command
    again after an interruption (files already there with the same size are skipped)."""
    from sealbox.cli.tree import remote_path

    folder = remote_path(to)
    link_password = _secret("Link password", False) if share and password else None
    results = []
    conflicts: list[str] = []
    with client(profile) as sdk:
        folder_id = _folder_id(sdk, folder)
        for path in paths:
            if path.is_dir():
                result, clashes = _upload_tree(sdk, path, folder, quiet)
                conflicts += clashes
            else:
                result = _upload_one(sdk, path, folder_id, quiet)
            if share:
                made = {"folder_id": result["id"]} if result.get("kind") == "folder" else {"file_id": result["id"]}
                link = sdk.share(**made, expires_in=expires_in, download_limit=limit, password=link_password)
                result["link"] = link.url
            said = result.pop("said")
            results.append(result)
            if not as_json:
                out.print(said, highlight=False)
                if share:
                    out.print(result["link"], highlight=False)
    if as_json:
        out.print_json(json.dumps(results))
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (", …" if len(conflicts) > 5 else "")
        fail(f"{len(conflicts)} files left alone: another file is at their place ({shown})", EXIT_REFUSED)


def _folder_id(sdk: Client, path: str) -> str | None:
    folder = sdk.make_path(path) if path else None
    return folder.id if folder else None


def _upload_one(sdk: Client, path: Path, folder_id: str | None, quiet: bool) -> dict[str, Any]:
    key = _fingerprint(path, sdk.url) + (f"|{folder_id}" if folder_id else "")
    earlier = _remembered().get(key)
    with bar(path.name, quiet) as show:
        created = sdk.upload(
            path, upload_url=earlier, on_upload_url=_remembering(key), on_progress=_announcing(earlier, show),
            folder_id=folder_id,
        )  # fmt: skip
    _remember(key, None)
    said = f"{created.id}  {created.name}  {created.size} bytes"
    return {"id": created.id, "name": created.name, "size": created.size, "said": said}


def _upload_tree(sdk: Client, path: Path, folder: str, quiet: bool) -> tuple[dict[str, Any], list[str]]:
    """A folder with its tree, into ``folder``/its name; large files' tus uploads are
    remembered like single files' (by path, size and modification time)."""
    from sealbox.client._tree import SMALL, walk

    root = path.resolve()
    remote = "/".join(p for p in (folder, root.name) if p)
    _, files = walk(str(root))
    keys = {f.rel: _fingerprint(Path(f.path), sdk.url) for f in files if f.size > SMALL}
    remembered = _remembered()
    earlier = {rel: remembered[key] for rel, key in keys.items() if key in remembered}

    def remember(rel: str, url: str | None) -> None:
        _remember(keys[rel], url)

    with bar(f"{root.name}/", quiet) as show:
        done = sdk.upload_dir(root, remote, upload_urls=earlier, on_upload_url=remember, on_progress=show)
    said = f"{done.folder_id}  {remote}/  {done.uploaded} files, {done.bytes} bytes"
    if done.skipped:
        said += f" ({done.skipped} there already)"
    result = {
        "id": done.folder_id, "kind": "folder", "name": root.name, "path": remote, "uploaded": done.uploaded,
        "skipped": done.skipped, "size": done.bytes, "conflicts": list(done.conflicts), "said": said,
    }  # fmt: skip
    return result, list(done.conflicts)


def _remembering(key: str) -> Callable[[str], None]:
    return lambda url: _remember(key, url)


def _announcing(earlier: str | None, show: Callable[[Done], None]) -> Callable[[Done], None]:
    """Progress, saying once that an earlier upload goes on from where it stopped."""
    said = not earlier

    def progress(done: Done) -> None:
        nonlocal said
        if not said and done.done:
            err.print(f"resuming at byte {done.done} of {done.total}", highlight=False)
        said = True
        show(done)

    return progress


def _is_link(target: str) -> bool:
    return "/s/" in urlparse(target).path


def download(
    target: Annotated[str, typer.Argument(help="A file id, or a share link (https://…/s/…)")],
    dest: Annotated[Path | None, typer.Argument(help="Where it goes (like -o)", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write it (default: its name)")] = None,
    as_zip: Annotated[bool, typer.Option("--zip", help="A folder or selection link: save it as one ZIP")] = False,
    password: Annotated[bool, typer.Option("--password", help="Ask for the link's password")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the link's password from stdin")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Download a file or a share link. A file grows in OUTPUT.part, and running the same
    command again after an interruption resumes from there. A folder or selection link
    downloads into a directory (OUTPUT, default its name) file by file, resuming the same
    way; with --zip it is saved as one ZIP (default NAME.zip)."""
    if dest is not None and output is not None:
        fail("give DEST or -o, not both", 2)
    output = output or dest
    link_password = _secret("Link password", password_stdin) if password or password_stdin else None
    if _is_link(target):
        with api_errors(), Client(target.split("/s/")[0], backoff=_backoff()) as sdk:
            info = sdk.link_info(target, link_password)
            if info.kind != "file":
                _download_collection(sdk, target, info, output, as_zip, link_password, force, quiet, as_json)
                return
            if as_zip:
                fail("--zip is for links to folders and selections; this one is a file", 2)
            path, part = _destination(output, info.name, force)
            with bar(info.name, quiet) as show:
                size = sdk.download_link(target, part, password=link_password, on_progress=show)
        expected = info.size
    else:
        if as_zip:
            fail("--zip is for links to folders and selections", 2)
        with client(profile) as sdk:
            meta = sdk.file(target)
            path, part = _destination(output, meta.name, force)
            with bar(meta.name, quiet) as show:
                size = sdk.download(target, part, on_progress=show)
        expected = meta.size
    if part.stat().st_size != expected or size != expected:
        fail(f"{part} has {part.stat().st_size} bytes, not the {expected} expected", EXIT_REFUSED)
    part.replace(path)
    _print({"path": str(path), "size": size}, as_json, lambda: out.print(f"{path}  {size} bytes", highlight=False))


def _download_collection(
    sdk: Client, link: str, info: LinkInfo, output: Path | None, as_zip: bool, password: str | None,
    force: bool, quiet: bool, as_json: bool,
) -> None:  # fmt: skip
    """A folder or selection link: one ZIP, or a directory filled file by file."""
    if as_zip:
        path, part = _destination(output, f"{info.name}.zip", force)
        with bar(path.name, quiet) as show:
            size = sdk.download_link_archive(link, part, password=password, on_progress=show)
        if part.stat().st_size != size:
            fail(f"{part} has {part.stat().st_size} bytes, not the {size} expected", EXIT_REFUSED)
        part.replace(path)
        _print({"path": str(path), "size": size}, as_json, lambda: out.print(f"{path}  {size} bytes", highlight=False))
        return
    directory = output or Path(Path(info.name).name)
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} exists and is not a directory: choose another with -o", EXIT_REFUSED)
    with bar(f"{directory.name}/", quiet) as show:
        done = sdk.download_link_dir(link, directory, password=password, on_progress=show)
    said = {"path": str(directory), "downloaded": done.downloaded, "skipped": done.skipped, "size": done.bytes,
            "conflicts": list(done.conflicts)}  # fmt: skip
    text = f"{directory}/  {done.downloaded} files, {done.bytes} bytes"
    if done.skipped:
        text += f" ({done.skipped} there already)"
    _print(said, as_json, lambda: out.print(text, highlight=False))
    if done.conflicts:
        shown = ", ".join(done.conflicts[:5]) + (", …" if len(done.conflicts) > 5 else "")
        fail(f"{len(done.conflicts)} files left alone: another file is in the way ({shown})", EXIT_REFUSED)


def _destination(output: Path | None, name: str, force: bool) -> tuple[Path, Path]:
    """Where the file goes, and the ``.part`` file it grows in until it is complete (an
    interrupted download resumes from there)."""
    path = output or Path(Path(name).name)
    if path.exists() and not force:
        fail(f"{path} exists already: choose another name with -o, or --force", EXIT_REFUSED)
    part = path.with_name(path.name + ".part")
    if part.exists() and part.stat().st_size:
        err.print(f"resuming at byte {part.stat().st_size}", highlight=False)
    return path, part


def rm(
    file_ids: Annotated[list[str], typer.Argument(help="File ids")],
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Delete files (their keys go with them: unreadable at once)."""
    with client(profile) as sdk:
        for file_id in file_ids:
            sdk.delete(file_id)
    _print({"deleted": file_ids}, as_json, lambda: out.print(f"deleted {len(file_ids)}", highlight=False))


UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_ITEMS = 1000


@share_app.command("create")
def share_create(
    paths: Annotated[list[str], typer.Argument(help="Paths of files or folders (or a file id)")],
    expires_in: Annotated[int | None, typer.Option(help="Lifetime in seconds (default: the server's)")] = None,
    limit: Annotated[int | None, typer.Option(help="Download limit")] = None,
    password: Annotated[bool, typer.Option("--password", help="Ask for a password")] = False,
    note: Annotated[str | None, typer.Option(help="A note shown to recipients")] = None,
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Create a share link and print it (it is shown only now). One path shares that file
    or folder (a folder link shows what the folder holds when it is used); several share
    them together as one selection. A file id (as 'ls' prints it) names a file too."""
    from sealbox.cli.tree import find, remote_path

    if len(paths) > MAX_ITEMS:
        fail(f"a link holds at most {MAX_ITEMS} items", 2)
    wanted = [path if UUID.fullmatch(path) else remote_path(path) for path in paths]
    if "" in wanted:
        fail("the top cannot be shared: name files or folders", 2)
    secret = _secret("Link password", False) if password else None
    options: dict[str, Any] = {"expires_in": expires_in, "download_limit": limit, "password": secret, "note": note}
    with client(profile) as sdk:
        items = []
        for path in wanted:
            item = None if UUID.fullmatch(path) else find(sdk, path)
            items.append(("file", path) if item is None else (item.kind, item.id))
        if len(items) > 1:
            link = sdk.share(items=items, **options)
        elif items[0][0] == "folder":
            link = sdk.share(folder_id=items[0][1], **options)
        else:
            link = sdk.share(items[0][1], **options)
    _print(asdict(link), as_json, lambda: out.print(link.url or "", highlight=False))


@share_app.command("list")
def share_list(
    file_id: Annotated[str | None, typer.Argument(help="Only this file's links")] = None,
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Your links with their status and downloads."""
    with client(profile) as sdk:
        links = sdk.links(file_id)

    def text() -> None:
        for link in links:
            left = "∞" if link.downloads_left is None else link.downloads_left
            what = link.file_id or link.folder_id or f"{link.items} items"
            out.print(f"{link.id}  {link.status:<9}  {link.downloads} down, {left} left  {what}", highlight=False)

    _print([asdict(link) for link in links], as_json, text)


@share_app.command("revoke")
def share_revoke(
    link_id: Annotated[str, typer.Argument(help="Link id (from 'share list')")],
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Revoke a link: it stops working at once."""
    with client(profile) as sdk:
        sdk.revoke_link(link_id)
    _print({"revoked": link_id}, as_json, lambda: out.print(f"revoked {link_id}", highlight=False))


@request_app.command("create")
def request_create(
    max_files: Annotated[int, typer.Option(help="How many files it accepts")] = 10,
    max_bytes: Annotated[int | None, typer.Option(help="How many bytes in all (default: the size limit)")] = None,
    expires_in: Annotated[int | None, typer.Option(help="Lifetime in seconds")] = None,
    password: Annotated[bool, typer.Option("--password", help="Ask for a password")] = False,
    profile: ProfileOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Create an upload-request link and print it (it is shown only now)."""
    secret = _secret("Link password", False) if password else None
    with client(profile) as sdk:
        created = sdk.create_request(max_files, max_bytes, expires_in, secret)
    url = sdk.url + (created.url or "")
    _print({**asdict(created), "url": url}, as_json, lambda: out.print(url, highlight=False))


def install(app: typer.Typer) -> None:
    from sealbox.cli import tree

    for command in (login, whoami, upload, download):
        app.command()(command)
    tree.install(app)
    app.command()(rm)
    app.add_typer(share_app, name="share")
    app.add_typer(request_app, name="request")
