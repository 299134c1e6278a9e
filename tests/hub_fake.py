"""A protocol-level fake of the Hugging Face Hub for offline tests.

huggingface_hub's HTTP client is routed (`huggingface_hub.set_client_factory`) to an `httpx2.MockTransport` whose
handler answers the endpoints hf-lottery uses — create-repo, create-branch, validate-yaml, preupload, commit (NDJSON:
added and deleted files, refused with 412 when its parent commit is not the branch head), repo info at a revision,
the repo tree (`list_repo_files`) and for downloads resolve (HEAD/GET) — records every commit and serves the
committed files back. Every file is declared a "regular" upload, so the commit carries the content itself (no LFS
transfer). `routed` points huggingface_hub at a handler for the length of a fixture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx2
import huggingface_hub
from huggingface_hub import constants


@contextmanager
def routed(handler: Callable[[httpx2.Request], httpx2.Response], monkeypatch, cache_dir: Path) -> Iterator[None]:
    """huggingface_hub online, its HTTP client answered by `handler`, its cache in `cache_dir`; restored on exit."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache_dir))
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(handler)))
    huggingface_hub.close_session()
    try:
        yield
    finally:
        huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)
        huggingface_hub.close_session()


@dataclass
class Commit:
    repo_id: str
    revision: str
    message: str
    files: dict[str, bytes]
    oid: str
    create_pr: bool = False
    deleted: list[str] = field(default_factory=list)


@dataclass
class FakeHub:
    """Committed files per repo and branch; `requests` logs (method, path, headers) of every call."""

    repos: dict[str, dict] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    fail_with: Exception | None = None

    # ------------------------------------------------------------------ helpers
    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return self.repos[repo_id]["branches"][revision]["files"]

    def _json(self, status: int, data) -> httpx2.Response:
        return httpx2.Response(status, json=data)

    def _error(self, status: int, message: str, code: str | None = None) -> httpx2.Response:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        return httpx2.Response(status, json={"error": message}, headers=headers)

    # ------------------------------------------------------------------ dispatch
    def handler(self, request: httpx2.Request) -> httpx2.Response:
        path = unquote(urlparse(str(request.url)).path)
        self.requests.append((request.method, path, dict(request.headers)))
        if self.fail_with is not None:
            raise self.fail_with
        routes = [
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", lambda r, m: self._json(200, {})),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/branch/(?P<branch>.+)", self._create_branch),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>.+)", self._preupload),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>.+)", self._commit),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>.+)", self._repo_info),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<prefix>.*))?", self._tree),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)", self._repo_info),
            ("HEAD", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
            ("GET", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
        ]
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if request.method == method and match:
                return handler(request, match.groupdict())
        return self._error(404, f"The fake Hub has no route for {request.method} {path}")

    def _create_repo(self, request, _):
        body = json.loads(request.content)
        repo_id = f"{body.get('organization') or 'user'}/{body['name']}"
        if repo_id in self.repos:  # the Hub's 409 names the repo's url, as create_repo(exist_ok=True) reads it
            return httpx2.Response(409, json={"error": "You already created this model repo",
                                              "url": f"https://huggingface.co/{repo_id}"})  # fmt: skip
        private = bool(body.get("private")) or body.get("visibility") == "private"
        self.repos[repo_id] = {"private": private, "branches": {"main": {"files": {}, "oid": "0" * 40}}}
        return self._json(200, {"url": f"https://huggingface.co/{repo_id}", "name": repo_id, "id": "fake"})

    def _repo(self, repo_id: str):
        return self.repos.get(repo_id)

    def _create_branch(self, request, match):
        repo = self._repo(match["repo"])
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        if match["branch"] in repo["branches"]:
            return self._error(409, "Reference already exists")
        repo["branches"][match["branch"]] = {
            "files": dict(repo["branches"]["main"]["files"]),
            "oid": repo["branches"]["main"]["oid"],
        }
        return self._json(200, {})

    def _preupload(self, request, match):
        if self._repo(match["repo"]) is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        files = json.loads(request.content)["files"]
        return self._json(
            200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        )

    def _commit(self, request, match):
        repo = self._repo(match["repo"])
        revision = match["rev"]
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        if revision not in repo["branches"]:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
        header = lines[0]["value"]
        branch = repo["branches"][revision]
        if header.get("parentCommit") not in (None, branch["oid"]):
            return self._error(412, "A commit has happened since. Please refresh and try again.")
        added, deleted = {}, []
        for line in lines[1:]:
            if line["key"] == "deletedFile" and line["value"]["path"] in branch["files"]:
                deleted.append(line["value"]["path"])
            elif line["key"] == "file":
                added[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            else:
                return self._error(400, f"The fake Hub accepts regular files and existing files to delete; got {line}")
        for name in deleted:
            del branch["files"][name]
        branch["files"].update(added)
        oid = hashlib.sha1(
            json.dumps(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in branch["files"].items())).encode()
        ).hexdigest()
        branch["oid"] = oid
        create_pr = "create_pr" in str(request.url)
        self.commits.append(Commit(match["repo"], revision, header["summary"], added, oid, create_pr, deleted))
        pr_url = f"https://huggingface.co/{match['repo']}/discussions/{len(self.commits)}" if create_pr else None
        return self._json(
            200,
            {
                "commitUrl": f"https://huggingface.co/{match['repo']}/commit/{oid}",
                "commitOid": oid,
                "pullRequestUrl": pr_url,
            },
        )

    def _repo_info(self, request, match):
        repo = self._repo(match["repo"])
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        revision = match.get("rev") or "main"
        if revision not in repo["branches"]:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        branch = repo["branches"][revision]
        siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(branch["files"].items())]
        return self._json(200, {"id": match["repo"], "modelId": match["repo"], "sha": branch["oid"], "private": repo["private"],
                                "siblings": siblings, "tags": [], "downloads": 0, "likes": 0})  # fmt: skip

    def _branch(self, repo: dict, revision: str) -> dict | None:
        return repo["branches"].get(revision) or next(
            (b for b in repo["branches"].values() if b["oid"] == revision), None
        )

    def _tree(self, request, match):
        repo = self._repo(match["repo"])
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        branch = self._branch(repo, match["rev"])
        if branch is None:
            return self._error(404, f"Invalid rev id: {match['rev']}", "RevisionNotFound")
        entries = [
            {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            for name, data in sorted(branch["files"].items())
            if name.startswith(match.get("prefix") or "")
        ]
        return self._json(200, entries)

    def _resolve(self, request, match):
        repo = self._repo(match["repo"])
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        revision = match["rev"]
        branch = self._branch(repo, revision)
        if branch is None:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        data = branch["files"].get(match["file"])
        if data is None:
            return self._error(404, "Entry not found", "EntryNotFound")
        headers = {
            "X-Repo-Commit": branch["oid"],
            "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
            "Content-Length": str(len(data)),
        }
        return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else data)
