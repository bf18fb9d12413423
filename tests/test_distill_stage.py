"""The distillation stage: DAgger fits the student to the privileged teacher, and the run keeps it."""

from __future__ import annotations

import json

import numpy as np
import torch

from fake_envs import PointMassVecEnv
from robolearn.config import RunConfig, load_config
from robolearn.distill import PrivilegedView, distill_into
from robolearn.networks import DeterministicActor, actor_from_export
from robolearn.ppo import PPO


def _teacher_on_critic_view():
    """A fixed teacher on the point mass's critic view (x, last action, time fraction) that
    ignores the time fraction, so the student's view (x, last action) can represent it."""
    torch.manual_seed(1)
    t = DeterministicActor(3, 1, [8], "tanh")
    with torch.no_grad():
        t.net[0].weight[:, 2] = 0.0
        t.net[-1].weight.mul_(0.5)
    return t.spec()


def test_privileged_view_gives_the_actor_the_critic_view():
    env = PrivilegedView(PointMassVecEnv(num_envs=3))
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["policy"], obs["critic"])
    assert env.single_observation_space["policy"].shape == (3,)


def test_dagger_fits_the_student_to_the_teacher_on_its_own_states():
    env = PointMassVecEnv(num_envs=64, horizon=30, start=1.0)
    cfg = RunConfig.model_validate({"network": {"actor_hidden": [16], "critic_hidden": [8]},
                                    "distill": {"rounds": 3, "steps_per_round": 30, "epochs": 60,
                                                "minibatch": 256, "lr": 3e-3}})
    student = PPO(env, cfg.ppo, cfg.network, seed=0)
    teacher = _teacher_on_critic_view()
    before = _gap(env, student, teacher)
    rows = distill_into(cfg, env, student, teacher, seed=0)
    assert [r["round"] for r in rows] == [0, 1, 2] and rows[-1]["samples"] == 3 * 30 * 64
    after = _gap(env, student, teacher)
    assert after < 0.1 * before, (before, after)


def _gap(env, student, teacher_dict) -> float:
    """Mean squared difference of the student's and the teacher's commands on fresh states."""
    t = actor_from_export(teacher_dict)
    obs, _ = env.reset(seed=123)
    with torch.no_grad():
        a_s = student.model.action_mean(torch.from_numpy(obs["policy"])).clamp(-1, 1)
        a_t = t(torch.from_numpy(obs["critic"]))
    return float((a_s - a_t).square().mean())


def test_train_with_a_teacher_writes_it_and_a_stateful_student(tmp_path):
    from robolearn.train import train

    cfg = load_config(None, ["env.num_envs=32", "ppo.rollout_steps=8", "train.total_env_steps=512",
                             "distill.teacher_env_steps=512", "distill.rounds=1", "distill.steps_per_round=5",
                             "distill.epochs=1", "network.integrator.index=[0,1,2]", "polish.iterations=0",
                             "trim.episodes=0", "eval.episodes=8", "eval.episode_steps=20", "eval.plots=false",
                             "train.progress=false", "curriculum.hard_starts.fraction=0"])
    res = train(cfg, out=tmp_path / "run")
    run = tmp_path / "run"
    assert (run / "teacher.pt").is_file()
    info = json.loads((run / "distill.json").read_text())
    assert info["teacher_trained_here"] and len(info["rounds"]) == 1
    pol = torch.load(run / "policy.pt", weights_only=True)
    assert pol["format"] == "robolearn.actor/2" and pol["integrator.index"].tolist() == [0, 1, 2]
    assert res.eval is not None and "distill" in res.eval and "real_range" in res.eval
