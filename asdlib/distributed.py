"""The grid on more machines: Dask distributed as the execution engine of ``asdlib run``.

``asdlib run --scheduler tcp://HOST:PORT`` sends the grid to a running Dask scheduler (workers
started with ``dask worker``, e.g. over SSH); ``--cluster local:N`` starts a
:class:`distributed.LocalCluster` of N single-threaded worker processes; ``--cluster slurm``
starts a :class:`dask_jobqueue.SLURMCluster` from a small YAML file (:func:`slurm_cluster`) or the
usual Dask configuration (``jobqueue.slurm``). Dask is an optional extra (``pip install
asdlib[cluster]``), imported only here, and this module is imported only when one of those options
is given.

What runs where
---------------
The client (the ``asdlib run`` process) prepares the run as a local run does (data, manifest,
splits, the run folder; :func:`asdlib.runner.plan_run`), then submits

1. feature tasks: each machine type's clips in chunks, written into the shared feature cache;
2. grid tasks (:func:`asdlib.runner.run_grid`): one per machine type x seed, each depending on
   its machine type's feature tasks, so no grid recomputes features.

Several runs can go in one submission (:func:`asdlib.runner.run_experiments`, as the book build
does): runs on the same clips share their feature tasks, and the grids are prioritised by their
cost (:func:`grid_cost`), the largest first, so that no worker idles while a small run finishes.

Every worker must see the data root, the results folder and the feature cache at the same paths
(a shared file system); :meth:`DaskEngine.check_workers` verifies it before anything is submitted.
A grid task claims its grid with the store's file lock, writes its cells atomically and returns
their names: a task rerun after its worker died finds the cells already written and trains only
the rest; two clients on one results folder share the work.
"""
from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

__all__ = ["ClusterError", "GridFailure", "DaskEngine", "grid_cost", "parse_cluster", "slurm_cluster", "SLURM_KEYS"]


class ClusterError(ValueError):
    """A cluster option or a worker that cannot do the work (message: what and the fix)."""


class GridFailure(RuntimeError):
    """Some grids failed on the cluster; ``failures`` maps each grid to its cells and error."""

    def __init__(self, failures: dict[str, tuple[list[str], str]]):
        self.failures = failures
        lines = [f"{grid} ({', '.join(cells)}): {error}" for grid, (cells, error) in failures.items()]
        super().__init__(f"{len(failures)} grid(s) failed; the others finished. " + "; ".join(lines))


def _need_dask():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterError("--scheduler/--cluster need Dask: pip install 'asdlib[cluster]' (dask[distributed], dask-jobqueue)") from None


# -- the cluster options ----------------------------------------------------------------------
def parse_cluster(text: str) -> tuple[str, int | None]:
    """``"local:4"`` -> ``("local", 4)``; ``"slurm"`` -> ``("slurm", None)``."""
    if text == "slurm":
        return "slurm", None
    match = re.fullmatch(r"local:(\d+)", text)
    if match and int(match.group(1)) >= 1:
        return "local", int(match.group(1))
    raise ClusterError(f"--cluster {text!r} must be local:N (N >= 1 worker processes) or slurm")


#: Keys of the SLURM YAML (``asdlib run --cluster slurm --cluster-config FILE``).
SLURM_KEYS = {
    "queue": "partition (sbatch -p)",
    "account": "account to charge (sbatch -A)",
    "cores": "CPU cores per job; each runs one single-threaded worker (one grid at a time)",
    "memory": "memory per job, e.g. '32GB' (a paper-size grid needs about 4 GB per worker)",
    "walltime": "time limit per job, e.g. '08:00:00'",
    "gpus": "GPUs per job (--gres=gpu:N); then one worker per GPU",
    "jobs": "number of jobs to submit",
    "processes": "workers per job (default: cores, or gpus when gpus > 0)",
    "python": "the Python of the asdlib environment on the compute nodes",
    "local_directory": "worker scratch folder on the nodes",
    "log_directory": "folder for the jobs' output files",
    "job_extra_directives": "more #SBATCH lines, e.g. ['--constraint=skylake']",
    "job_script_prologue": "shell lines run before the worker, e.g. ['module load cuda']",
    "interface": "network interface of the workers, e.g. ib0",
    "scheduler_host": "address the scheduler listens on (default: this machine's; 127.0.0.1 for tests)",
}


def load_slurm_config(path: str | Path | None) -> dict:
    """Read and check a SLURM YAML (keys :data:`SLURM_KEYS`); ``None`` gives ``{}`` (Dask's own config)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ClusterError(f"cluster config {str(path)!r} does not exist; write a YAML with keys {sorted(SLURM_KEYS)}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ClusterError(f"{path}: not valid YAML ({getattr(err, 'problem', None) or type(err).__name__})") from None
    if not isinstance(values, dict):
        raise ClusterError(f"{path}: expected a mapping of {sorted(SLURM_KEYS)}")
    unknown = sorted(set(values) - set(SLURM_KEYS))
    if unknown:
        raise ClusterError(f"{path}: unknown key(s) {unknown}; known: {sorted(SLURM_KEYS)}")
    for key in ("cores", "jobs", "gpus", "processes"):
        if key in values and not (isinstance(values[key], int) and not isinstance(values[key], bool) and values[key] >= (0 if key == "gpus" else 1)):
            raise ClusterError(f"{path}: {key} must be a positive integer, got {values[key]!r}")
    if "memory" in values and not _is_amount_of_memory(values["memory"]):
        raise ClusterError(f"{path}: memory must be an amount per job such as '32GB', got {values['memory']!r}")
    return values


def _is_amount_of_memory(value: Any) -> bool:
    """Whether ``value`` reads as a positive number of bytes with a unit (``"32GB"``, ``"4 GiB"``)."""
    if not isinstance(value, str) or not any(c.isalpha() for c in value):
        return False
    from dask.utils import parse_bytes

    try:
        return parse_bytes(value) > 0
    except (ValueError, TypeError):
        return False


def slurm_cluster(config: dict | None = None):
    """A :class:`dask_jobqueue.SLURMCluster` from a SLURM YAML's values (no job submitted yet).

    Each job asks SLURM for ``cores`` CPUs and runs ``processes`` single-threaded workers (default:
    one per core, or one per GPU, each worker then using one GPU); ``jobs`` is what
    :meth:`DaskEngine.from_options` scales to. ``scheduler_host`` binds the scheduler (it must be
    reachable from the compute nodes; the tests bind it to 127.0.0.1).
    """
    _need_dask()
    import dask
    from dask_jobqueue import SLURMCluster

    config = dict(config or {})
    for key, example in (("cores", "8"), ("memory", "32GB")):
        if config.get(key) is None and dask.config.get(f"jobqueue.slurm.{key}", None) is None:
            raise ClusterError(f"--cluster slurm needs {key} per job: set `{key}: {example}` in the --cluster-config YAML, "
                               f"or jobqueue.slurm.{key} in Dask's configuration")
    config.pop("jobs", None)
    gpus = int(config.pop("gpus", 0) or 0)
    host = config.pop("scheduler_host", None)
    kwargs: dict[str, Any] = {k: v for k, v in config.items() if v is not None}
    if "cores" in kwargs:
        # sbatch gets all the cores; Dask gets one single-threaded worker per core (or per GPU)
        processes = int(kwargs.pop("processes", None) or gpus or kwargs["cores"])
        kwargs["job_cpu"] = kwargs["cores"]
        kwargs["cores"] = processes
        kwargs["processes"] = processes
    if gpus:
        kwargs["job_extra_directives"] = [*kwargs.get("job_extra_directives", []), f"--gres=gpu:{gpus}"]
    kwargs.setdefault("job_script_prologue", [])
    kwargs["job_script_prologue"] = [*kwargs["job_script_prologue"], "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"]
    if host is not None:
        kwargs["scheduler_options"] = {"host": host}
    return SLURMCluster(**kwargs)


# -- tasks (run on the workers) ------------------------------------------------------------------
def _see_paths(probes: dict[str, tuple[str, str | None]]) -> dict[str, str]:
    """On a worker: which of ``{what: (path, expected text)}`` it cannot see; ``{what: problem}``."""
    problems = {}
    for what, (path, text) in probes.items():
        p = Path(path)
        try:
            if text is None:
                if not p.exists():
                    problems[what] = f"{path} does not exist"
            elif p.read_text() != text:
                problems[what] = f"{path} holds other content (another file system?)"
        except OSError as err:
            problems[what] = f"{path}: {err.strerror or err}"
    return problems


def _features_task(paths: list[str], spec_dicts: list[dict], cache_dir: str) -> int:
    """Compute (or find) the features of some clips into the shared cache, for every spec given
    (the inputs and feature settings of each); returns how many clips."""
    from .cache import FeatureCache, extract_features
    from .experiments import ExperimentSpec
    from .memory import tune_malloc
    from .modelspec import grid_inputs

    tune_malloc()
    for spec_dict in spec_dicts:
        spec = ExperimentSpec.from_dict(spec_dict)
        extract_features(paths, grid_inputs(spec.model_specs()), spec.model_config(), cache=FeatureCache(cache_dir),
                         n_jobs=1, progress=False)
    return len(paths)


def _worker_device(device: str) -> str:
    """One GPU per worker: ``cuda:<k>`` from the worker's number, when the job asks for CUDA."""
    import torch

    if device not in ("auto", "cuda") or not torch.cuda.is_available():
        return device
    try:
        from distributed import get_worker

        name = str(get_worker().name)
    except (ImportError, ValueError):
        name = "0"
    digits = re.findall(r"\d+", name)
    return f"cuda:{int(digits[-1]) % torch.cuda.device_count() if digits else 0}"


def _task_slots_in_this_process() -> int:
    """Tasks the Dask workers of this process may run at once (threads summed over its workers)."""
    try:
        from distributed import Worker

        return sum(int(w.state.nthreads) for w in list(Worker._instances) if w.status.name not in ("closed", "closing"))
    except Exception:  # noqa: BLE001 - an unknown Dask layout: do not block the run
        return 1


def _grid_task(job, *feature_chunks) -> list[str]:
    """Run one grid on a worker (its machine type's feature chunks are done: ``feature_chunks``)."""
    from .runner import run_grid

    if _task_slots_in_this_process() > 1:
        # two grids in one process would share torch's global random generator and thread setting
        raise ClusterError("this Dask worker process runs several tasks at once; asdlib's grids need single-threaded "
                           "worker processes: `dask worker --nthreads 1` (--nworkers N for more)")
    for what, path in (("results folder", job.store_path), ("data root", job.data_root)):
        if not Path(path).is_dir():
            raise ClusterError(f"worker on {socket.gethostname()} cannot see the {what} {path}; it must be on a file system all workers share")
    run_grid(job, block=True, device=_worker_device(job.device))
    return job.cells


# -- the engine --------------------------------------------------------------------------------
class DaskEngine:
    """Runs a prepared run's grids on a Dask cluster (see the module's docstring).

    Parameters
    ----------
    client : distributed.Client
    cluster : optional
        A cluster this engine started (closed with the engine).
    chunk : int, optional
        Clips per feature task (default: a machine type's clips over twice the workers, 4-64).
    """

    def __init__(self, client, cluster=None, chunk: int | None = None):
        self.client = client
        self.cluster = cluster
        self.chunk = chunk

    @classmethod
    def from_options(cls, scheduler: str | None = None, cluster: str | None = None, cluster_config: str | Path | None = None,
                     host: str | None = None) -> "DaskEngine":
        """Connect to ``scheduler`` or start ``cluster`` (``local:N`` or ``slurm``), as ``asdlib run`` does.

        ``host`` binds a started cluster's scheduler (default: loopback for ``local:N``; for SLURM the
        config's ``scheduler_host`` or this machine's address).
        """
        _need_dask()
        from distributed import Client, LocalCluster

        if (scheduler is None) == (cluster is None):
            raise ClusterError("give one of --scheduler tcp://HOST:PORT or --cluster local:N|slurm")
        if scheduler is not None:
            if not re.fullmatch(r"(tcp|tls|inproc|ucx)://\S+", scheduler):
                raise ClusterError(f"--scheduler {scheduler!r} must look like tcp://HOST:PORT (see `dask scheduler`)")
            try:
                return cls(Client(scheduler, timeout="30s"))
            except (OSError, TimeoutError) as err:
                raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({err}); start it with `dask scheduler`") from None
        kind, n = parse_cluster(cluster)
        if kind == "local":
            env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host=host or "127.0.0.1",
                                 dashboard_address=None if not _has_bokeh() else f"{host or '127.0.0.1'}:0", env=env)
            return cls(Client(local), local)
        config = load_slurm_config(cluster_config)
        if host is not None:
            config["scheduler_host"] = host
        jobs = int(config.get("jobs", 1))
        slurm = slurm_cluster(config)
        slurm.scale(jobs=jobs)
        return cls(Client(slurm), slurm)

    def close(self) -> None:
        """Close the client, and the cluster when this engine started it (its workers stop)."""
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self) -> "DaskEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def dashboard(self) -> str | None:
        """The Dask dashboard's address, when there is one."""
        try:
            return self.client.dashboard_link if _has_bokeh() else None
        except Exception:  # noqa: BLE001 - no dashboard is not an error
            return None

    def check_workers(self, plan) -> None:
        """Fail with one clear line when a worker cannot see the data, the results folder or the cache."""
        n = len(self.client.scheduler_info().get("workers", {}))
        if n == 0:
            tqdm.write("asdlib: waiting for the first Dask worker to connect ...")
            self.client.wait_for_workers(1)
        cache_dir = Path(plan.jobs[0].cache_dir) if plan.jobs else None
        probes: dict[str, tuple[str, str | None]] = {}
        token = uuid.uuid4().hex
        probe = plan.store.path / "locks" / f"probe-{token}"
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(token)
        probes["results folder"] = (str(probe), token)
        cache_probe = None
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            cache_probe = cache_dir / f".probe-{token}"
            cache_probe.write_text(token)
            probes["feature cache"] = (str(cache_probe), token)
        if plan.jobs:
            probes["data root"] = (str(plan.jobs[0].train["path"].iloc[0]), None)
        try:
            answers = self.client.run(_see_paths, probes)
        finally:
            probe.unlink(missing_ok=True)
            if cache_probe is not None:
                cache_probe.unlink(missing_ok=True)
        for worker, problems in sorted(answers.items()):
            for what, problem in problems.items():
                raise ClusterError(f"Dask worker {worker} cannot see the {what}: {problem}; data, results and the "
                                   "feature cache must be on a file system every worker shares, at the same paths")

    def run(self, plans, progress: bool = True) -> None:
        """Submit the feature and grid tasks of one or several prepared runs, show progress, collect failures.

        Several plans (e.g. every grid a book build needs) are submitted together, so no worker
        waits for a small run to finish before the next run's grids start; the largest grids are
        given the highest priority, so the last ones to finish are small.

        Parameters
        ----------
        plans : asdlib.runner.RunPlan or list of them
        progress : bool
            One progress bar over every cell of ``plans``.

        Raises
        ------
        GridFailure
            Some grids failed (each named with its cells and error); the others finished.
        KeyboardInterrupt
            The submitted work is cancelled; the next ``asdlib run`` resumes.
        """
        from distributed import as_completed

        plans = [plans] if not isinstance(plans, (list, tuple)) else list(plans)
        todo = [(plan, job) for plan in plans for job in plan.jobs
                if any(not plan.store.cell_done(*_parse(c)) for c in job.cells)]

        def cells_left() -> int:
            return sum(1 for plan in plans for job in plan.jobs for c in job.cells if not plan.store.cell_done(*_parse(c)))

        total = sum(len(job.cells) for plan in plans for job in plan.jobs)
        if self.dashboard:
            tqdm.write(f"asdlib: Dask dashboard at {self.dashboard}")
        if not todo:
            return
        for plan in plans:
            if any(p is plan for p, _ in todo):
                self.check_workers(plan)
        n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        futures = []
        grid_of = {}
        desc = f"grid {plans[0].store.path.name}" if len(plans) == 1 else f"{len(plans)} grids"
        try:
            # one set of feature tasks per clip set: runs on the same clips (e.g. a book's grids) share them
            keys = [(job.cache_dir, tuple(sorted(set(map(str, job.train["path"])) | set(map(str, job.test["path"])))))
                    for _, job in todo]
            clip_sets: dict[tuple, tuple[str, list[dict]]] = {}  # (cache, clips) -> (a machine name, specs)
            for (_, job), key in zip(todo, keys):
                specs = clip_sets.setdefault(key, (job.machine, []))[1]
                if job.spec not in specs:
                    specs.append(job.spec)
            feature_futures: dict[tuple, list] = {}
            for (cache_dir, paths), (machine, specs) in clip_sets.items():
                size = self.chunk or max(4, min(64, -(-len(paths) // (2 * n_workers))))
                # features first: every grid waits for its clips'
                feature_futures[(cache_dir, paths)] = [
                    self.client.submit(_features_task, list(paths[i:i + size]), specs, cache_dir, pure=False, priority=10**12,
                                       key=f"features-{machine}-{i // size}-{uuid.uuid4().hex[:8]}")
                    for i in range(0, len(paths), size)
                ]
                futures += feature_futures[(cache_dir, paths)]
            for (_, job), key in zip(todo, keys):
                future = self.client.submit(_grid_task, job, *feature_futures[key], pure=False, priority=grid_cost(job),
                                            key=f"grid-{job.machine}-seed{job.seed}-{uuid.uuid4().hex[:8]}")
                grid_of[future.key] = job
                futures.append(future)
            failures: dict[str, tuple[list[str], str]] = {}
            with tqdm(total=total, initial=total - cells_left(), desc=f"{desc} (dask)", unit="cell", disable=not progress) as bar:
                for future in as_completed([f for f in futures if f.key in grid_of]):
                    job = grid_of[future.key]
                    if future.status == "error":
                        err = future.exception()
                        failures[job.name] = (job.cells, f"{type(err).__name__}: {err}")
                        tqdm.write(f"asdlib: error: grid {job.name} failed: {type(err).__name__}: {err}")
                    bar.n = total - cells_left()
                    bar.refresh()
        except BaseException:
            self.client.cancel(futures, force=True)
            raise
        if failures:
            raise GridFailure(failures)


def grid_cost(job) -> int:
    """A grid's relative cost, for scheduling the largest first: its models' inputs x the clips they pass.

    Each model passes every training clip ``epochs`` times, then every clip once more to score it
    (the training clips for calibration, the test clips); a pass costs in proportion to the model's
    number of inputs (one encoder each).
    """
    from .experiments import ExperimentSpec

    spec = ExperimentSpec.from_dict(job.spec)
    wanted = set(job.models)
    inputs = sum(len(ms.inputs) for ms in spec.model_specs() if ms.name in wanted)
    return int(inputs * (len(job.train) * (spec.model_config().epochs + 1) + len(job.test)))


def _parse(cell: str):
    from .runner import parse_cell

    return parse_cell(cell)


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True

