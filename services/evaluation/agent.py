"""The evaluation agent: takes `evaluate.requested` jobs and reports `evaluate.completed`."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence

from greenai.events import Envelope, EventData
from greenai.events.jobs import EvaluateRequested
from greenai.events.results import Energy, EvaluateCompleted, Latency, TaskScore
from greenai.services.evaluation.benchmarks.auto import benchmark
from greenai.services.evaluation.benchmarks.base import SUBSET_VERSION, BenchmarkDataError, UnknownBenchmarkError
from greenai.services.evaluation.job import evaluate_folder, latency_of_folder
from greenai.services.evaluation.sandbox import SandboxUnavailable, check_isolation
from greenai.shared.artifacts import UsesArtifacts, compute_device
from greenai.shared.capabilities import announcer
from greenai.shared.config import Settings
from greenai.shared.host_lease import host_to_itself
from greenai.shared.jobs import JobError, run_in_child
from greenai.shared.model_io import folder_sha256
from greenai.shared.runtime import JobSpec

AGENT = "evaluation"


class EvaluationAgent(UsesArtifacts):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def spec(self) -> JobSpec:
        return JobSpec(
            agent=AGENT,
            request_type=EvaluateRequested.TYPE,
            job_kind="evaluate",
            handler=self.handle,
            result_types=(EvaluateCompleted.TYPE,),
            attach=self.attach,
            announce=announcer(AGENT, "evaluate", list, compute_device(), self.settings),
        )

    async def handle(self, request: Envelope) -> Sequence[EventData]:
        job = request.data
        assert isinstance(job, EvaluateRequested)
        data_dir = self.settings.data_dir
        benches = []
        try:
            for name in (job.task, *job.secondary):
                bench = benchmark(name, job.trust_task_code)
                benches.append(bench)
                if name == job.task and not bench.bounded:
                    raise BenchmarkDataError(f"{name} is lower-is-better ({bench.metric}): a secondary benchmark only")
                if data_dir is not None and "lm_eval_task" not in bench.meta:
                    bench.load_local(data_dir)  # missing or malformed files: refused now, with file and line
        except (UnknownBenchmarkError, BenchmarkDataError, FileNotFoundError) as exc:
            raise JobError(str(exc), "invalid") from exc
        if any(b.meta.get("runs_model_code") for b in benches):
            try:  # model-written code runs only in real isolation, or not at all
                await asyncio.to_thread(check_isolation)
            except SandboxUnavailable as exc:
                raise JobError(str(exc), "unsupported") from exc
        folder = await self.fetch(job.target)
        artifact = job.target.artifact
        digest = artifact.sha256 if artifact is not None else await asyncio.to_thread(folder_sha256, folder)
        tasks = "+".join(re.sub(r"[^A-Za-z0-9_.:-]+", "_", t) for t in (job.task, *job.secondary))
        key = f"v{SUBSET_VERSION}-{digest}-{tasks}-{job.limit}-{job.seed}"
        cache = self.settings.cache_dir / "evaluations" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
        if cache.is_file():
            cached = EvaluateCompleted.model_validate_json(cache.read_text())
            if cached.latency.energy is not None:  # one from before v3 lacks energy per token: measure again
                update = {"job_id": job.job_id, "episode": job.episode, "cached": True, "purpose": job.purpose}
                return [cached.model_copy(update=update)]
        measured = await run_in_child(
            evaluate_folder,
            str(folder),
            job.task,
            str(data_dir) if data_dir else None,
            job.limit,
            job.seed,
            str(self.settings.cache_dir),
            tuple(job.secondary),
            None,
            job.trust_task_code,
            False,
            threads=self.settings.torch_threads,
        )
        r = measured.value
        async with host_to_itself() as (leased, waited):  # no heavy job on this host runs beside it
            speed = await run_in_child(latency_of_folder, str(folder), threads=self.settings.torch_threads, hold=False)
        latency = Latency(**speed.value, host_lease=leased, waited_for_jobs=waited if leased else None)
        result = EvaluateCompleted(
            job_id=job.job_id,
            episode=job.episode,
            task=job.task,
            metric=r["metric"],
            accuracy=r["accuracy"],
            accuracy_stderr=r["accuracy_stderr"],
            ci_low=r["ci_low"],
            ci_high=r["ci_high"],
            n=r["n"],
            limit=job.limit,
            latency=latency,
            peak_rss_mb=round(measured.peak_rss_mb, 1),
            size_bytes=r["size_bytes"],
            energy=Energy(**r["energy"]),
            wall_s=round(measured.wall_s, 3),
            artifact_sha256=digest,
            secondary=[TaskScore(**x) for x in r["secondary"]],
            purpose=job.purpose,
            cuda_peak_mb=r["cuda_peak_mb"],
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(result.model_dump_json())
        tmp.replace(cache)  # a cache, not a record: the log keeps the event either way
        return [result]
