"""``asha-hpc submit``'s own edges, without a cluster (a stand-in ``sbatch`` on the PATH): the
master job's account (the config's slurm.account by default), QOS and other options; a failed
sbatch leaves no folder that a later ``run`` would refuse; ``status`` of a submitted folder
whose master has not made the experiment yet says so, with the job's id and log."""
import json
import os
import sys

import yaml

from helpers import cli, fake_slurm_command, make_experiment


def _config(tmp_path, **slurm):
    path = make_experiment(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["slurm"] = {"partition": "gpu", **slurm}
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_master_job_takes_account_qos_and_other_options(tmp_path):
    cfg = _config(tmp_path, account="proj42")
    # no Slurm commands on the PATH: --dry-run asks no cluster (one that is installed but down
    # would hold each call up to the commands' timeout)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    script = cli("submit", cfg, "--exp-dir", tmp_path / "run", "--dry-run", "--qos", "long",
                 "--sbatch", "mail-type=END", "--sbatch=--mail-user=me@uni.edu", env=env).stdout
    for line in ("#SBATCH --account=proj42", "#SBATCH --qos=long", "#SBATCH --mail-type=END",
                 "#SBATCH --mail-user=me@uni.edu"):
        assert line in script.splitlines(), script
    mine = cli("submit", cfg, "--exp-dir", tmp_path / "run", "--dry-run", "--account", "other",
               env=env)
    assert "#SBATCH --account=other" in mine.stdout.splitlines()
    bad = cli("submit", cfg, "--exp-dir", tmp_path / "run", "--dry-run", "--sbatch", "exclusive",
              check=False, env=env)
    assert bad.returncode != 0 and "--sbatch 'exclusive': write an sbatch option as KEY=VALUE" \
        in bad.stderr
    # SIGUSR2 comes 120 s before the end: a 2-minute master would requeue itself at once
    short = cli("submit", cfg, "--exp-dir", tmp_path / "run", "--dry-run", "--time", "2",
                check=False, env=env)
    assert short.returncode != 0 and "--time 2: the master's job gets 2 min, and Slurm signals " \
        "it 120 s before its end" in short.stderr and "at least 5 minutes" in short.stderr
    assert "#SBATCH --time=0:05:00" in cli("submit", cfg, "--exp-dir", tmp_path / "run",
                                          "--dry-run", "--time", "0:05:00", env=env).stdout


def test_quiet_reaches_the_master_jobs_command_and_a_template_without_its_field_is_refused(
        tmp_path):
    """``submit --quiet``: the master job's log gets no progress line but the last (a search of
    days printed one every few seconds). It reaches the job through the template's
    ``${quiet}``; a user's template from before that field would drop it without a word."""
    cfg = _config(tmp_path)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))

    def master_line(*flags):
        script = cli("submit", cfg, "--exp-dir", tmp_path / "run", "--dry-run", *flags,
                     env=env).stdout
        (line,) = [x for x in script.splitlines() if "slurm-master" in x]
        return line.split()

    assert master_line("--quiet")[-1] == "--quiet" and "--quiet" not in master_line()
    old = tmp_path / "mine.sbatch"  # a copy made before ${quiet}: its own lines kept
    old.write_text("#!/bin/bash\n#SBATCH --job-name=mine-${name}\n#SBATCH --time=${time}\n"
                   "exec ${python} -m asha_hpc.cli slurm-master ${config} --exp-dir ${exp_dir}\n")
    assert master_line("--template", old)[-1] != "--quiet"  # without --quiet it serves as before
    r = cli("submit", cfg, "--exp-dir", tmp_path / "run", "--dry-run", "--quiet", "--template",
            old, check=False, env=env)
    assert r.returncode != 0 and not (tmp_path / "run").exists()
    assert f"--quiet: the template {old} has no ${{quiet}} field" in r.stderr, r.stderr
    assert "end its slurm-master line with ${quiet}" in r.stderr


def test_a_refused_master_job_leaves_no_folder_and_status_explains_a_waiting_one(tmp_path):
    sbatch, env = fake_slurm_command(  # no sinfo
        tmp_path, "sbatch", "echo 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    cfg, exp = _config(tmp_path), tmp_path / "run"
    r = cli("submit", cfg, "--exp-dir", exp, check=False, env=env)
    assert r.returncode != 0 and "sbatch failed for the master's job: sbatch: error: invalid " \
        "partition specified: nope" in r.stderr
    assert not exp.exists()  # a later `run` there is not refused
    sbatch.write_text("#!/bin/sh\necho '4603;cluster'\n")  # --parsable: the id, then the cluster
    r = cli("submit", cfg, "--exp-dir", exp, env=env)
    assert "master submitted as Slurm job 4603" in r.stdout
    squeue, _ = fake_slurm_command(tmp_path, "squeue", "echo PENDING\n")  # the job waits
    waiting = cli("status", exp, env=env)  # a state, not an error: a script polling status goes on
    assert f"experiment: {exp} (not made yet)" in waiting.stdout
    assert "state: submitted: Slurm job 4603 has not started yet: `squeue -j 4603` says why it " \
        "waits (`scancel 4603` withdraws it)" in waiting.stdout, waiting.stdout
    d = json.loads(cli("status", exp, "--json", env=env).stdout)
    assert d["state"] == "submitted" and d["slurm_job_id"] == "4603" and d["master_log"] is None
    (exp / "master-4603.out").write_text("/tmp/x/slurm_script: line 20: module: command not found\n")
    squeue.write_text("#!/bin/sh\necho RUNNING\n")
    ran = cli("status", exp, env=env)
    assert f"Slurm job 4603 has started and has not made the experiment yet (its setup lines still " \
        f"run, or it stopped): its log says which: {exp / 'master-4603.out'}" in ran.stdout
    assert "log's last line: /tmp/x/slurm_script: line 20: module: command not found" in ran.stdout
    best = cli("best", exp, check=False)  # the other commands: one line, why there is nothing yet
    assert best.returncode != 0 and f"{exp}: no experiment yet: Slurm job 4603 has started" \
        in best.stderr
    # the job ended there (its setup failed; or scancel): squeue no longer knows it
    squeue.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\n"
                      "exit 1\n")
    ended = cli("status", exp, env=env).stdout
    assert "state: ended: the master's Slurm job 4603 ended (ENDED) before it made the " \
        f"experiment; its log: {exp / 'master-4603.out'}: no search runs here" in ended, ended


def test_submit_into_an_experiment_resumes_it_and_refuses_a_config_that_differs(tmp_path):
    """``submit`` onto an existing folder puts its master back as a job, which resumes the
    experiment as stored: a config that says otherwise would be ignored, so it is refused,
    naming what differs; the stored config (or one the same but for a seed drawn anew) goes."""
    cfg = make_experiment(tmp_path)
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    raw = yaml.safe_load(cfg.read_text())
    raw["searcher"]["max_trials"] += 4
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(raw))
    r = cli("submit", tmp_path / "more.yaml", "--exp-dir", exp, "--dry-run", check=False,
            env=env)
    assert r.returncode != 0 and r.stdout == ""
    assert f"{exp} already holds experiment" in r.stderr and "differs from its config in " \
        "searcher: the master's job would resume it as it is" in r.stderr
    assert f"asha-hpc submit {exp / 'experiment.yaml'} --exp-dir {exp}" in r.stderr
    for same in (exp / "experiment.yaml", cfg):
        ok = cli("submit", same, "--exp-dir", exp, "--dry-run", env=env)
        assert "the master's job resumes it" in ok.stderr and "#SBATCH" in ok.stdout


def test_status_of_a_search_whose_master_job_is_queued_again_says_not_to_resume_it(tmp_path):
    """The master's job was requeued (its time limit, `scontrol requeue`, a node that failed)
    and pends: no master runs, and the job resumes the search when it starts. status says so,
    rather than "asha-hpc resume goes on", which would make that job fail as a second master."""
    from asha_hpc.config import load_config
    from asha_hpc.launch import create_experiment

    exp = tmp_path / "run"
    create_experiment(load_config(make_experiment(tmp_path)), exp)
    squeue, env = fake_slurm_command(
        tmp_path, "squeue", '[ "$3" = 4711 ] && echo "PENDING|BeginTime"\nexit 0\n')
    assert "`asha-hpc resume" in cli("status", exp, env=env).stdout  # no master job: resume
    (exp / "master.job").write_text("4711\n")
    out = cli("status", exp, env=env).stdout
    assert ("no master is running; the master's Slurm job 4711 is pending (BeginTime) and "
            "resumes the search when it starts (a `resume` by hand now would make it fail: "
            "`scancel 4711` first)") in out, out
    assert json.loads(cli("status", exp, "--json", env=env).stdout)["master_job"] == {
        "job_id": "4711", "state": "PENDING", "reason": "BeginTime",
        "log": str(exp.resolve() / "master-4711.out")}
    squeue.write_text('#!/bin/sh\n[ "$3" = 4711 ] && echo "RUNNING|None"\nexit 0\n')
    out = cli("status", exp, env=env).stdout  # started: the master takes the lease shortly
    assert ("no master is running; the master's Slurm job 4711 is running but has not taken the "
            f"search yet: it is starting (or stuck before it: see {exp / 'master-4711.out'}), and "
            "resumes the search once started (a `resume` by hand now would make it fail: "
            "`scancel 4711` first)") in out, out
    (exp / "master.job").write_text("4712\n")  # one squeue no longer knows: it ended
    assert "`asha-hpc resume" in cli("status", exp, env=env).stdout


def test_submit_into_a_folder_in_memory_warns_where_the_user_reads_it(tmp_path):
    """The folder's warning (tmpfs: never shared with the compute nodes) comes from ``submit``
    on the login node, not from the master's job, whose log nobody reads before it fails."""
    import shutil
    import uuid
    from pathlib import Path

    _, env = fake_slurm_command(tmp_path, "sbatch", "echo '4604;cluster'\n")
    cfg = _config(tmp_path)
    raw = yaml.safe_load(cfg.read_text())
    raw["backend"] = "slurm"
    cfg.write_text(yaml.safe_dump(raw))
    exp = Path("/dev/shm") / f"asha-submit-{uuid.uuid4().hex[:8]}"
    try:
        r = cli("submit", cfg, "--exp-dir", exp, env=env)
    finally:
        shutil.rmtree(exp, ignore_errors=True)
    assert "master submitted as Slurm job 4604" in r.stdout
    assert f"asha-hpc: warning: {exp} is on tmpfs, the memory of this machine: jobs on other " \
           "nodes cannot write there" in r.stderr, r.stderr
    here = cli("submit", cfg, "--exp-dir", tmp_path / "run", env=env)  # a disk: said nothing
    assert "warning" not in here.stderr, here.stderr
