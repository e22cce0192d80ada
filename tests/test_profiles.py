import pytest

from hrm_export.core.errors import ConfigFileError, ProfileError, UserError
from hrm_export.core.profiles import check_shapes, list_profiles, load_profile
from hrm_export.core.specs import module_specs
from model_src.config import HRMConfig, tiny_config

CFG = HRMConfig()


def l_module_shapes(batch=1, minutes=390):
    return {"minutes": (batch, minutes, 11), "film_gamma": (batch, 544), "film_beta": (batch, 544)}


def test_shipped_profiles_match_the_plan():
    lat, thr = load_profile("latency"), load_profile("throughput")
    assert {p.name for p in list_profiles()} >= {"latency", "throughput"}
    assert lat.axes["batch"] == (1, 1, 8) and lat.axes["new_minutes"][1] == 1 and lat.axes["past_minutes"][1] == 389
    assert thr.axes["batch"] == (1, 128, 128) and thr.axes["minutes"][1] == 256  # 128 days, 256-minute windows
    for p in (lat, thr):
        assert p.axes["days"][2] == 64 and p.axes["minutes"][2] == 390 and p.axes["past_minutes"][0] == 0


def test_shapes_fill_fixed_dims_from_the_spec():
    spec = module_specs(CFG)["l_step"]
    past_kv = next(t for t in spec.inputs if t.name == "past_kv")
    lo, opt, hi = load_profile("latency").shapes(past_kv)
    assert lo == (5, 2, 1, 8, 0, 68) and opt == (5, 2, 1, 8, 389, 68) and hi == (5, 2, 8, 8, 389, 68)
    present = next(t for t in spec.outputs if t.name == "present_kv")
    assert load_profile("latency").shapes(present)[1][4] == 390  # total = past + new


@pytest.mark.parametrize(
    ("module", "shapes", "message"),
    [
        ("l_module", l_module_shapes(minutes=0), "minutes=0 outside latency range 1..390"),
        ("l_module", l_module_shapes(minutes=391), "minutes=391 exceeds the model's limit 390"),
        ("h_module", {"days": (1, 65, 8)}, "days=65 exceeds the model's limit 64"),
        ("l_module", l_module_shapes(batch=129), "batch=129 outside latency range 1..8"),
    ],
)
def test_refuses_shapes_outside_every_profile(module, shapes, message):
    with pytest.raises(ProfileError, match=message.replace(".", r"\.")) as e:
        check_shapes([load_profile("latency"), load_profile("throughput")], module, shapes, CFG)
    assert e.value.hint  # says what to do


def test_refusal_names_the_profile_that_admits_the_shape():
    with pytest.raises(ProfileError, match="batch=100 outside latency range 1..8") as e:
        load_profile("latency").check("l_module", l_module_shapes(batch=100), CFG)
    assert "'throughput' admits" in e.value.hint


def test_session_rule_and_fixed_dims():
    step = {"minutes": (1, 2, 11), "film_gamma": (1, 544), "film_beta": (1, 544),
            "past_kv": (5, 2, 1, 8, 389, 68)}
    with pytest.raises(ProfileError, match="389 \\+ 2 exceeds the session length 390"):
        load_profile("latency").check("l_step", step, CFG)
    load_profile("latency").check("l_step", {**step, "minutes": (1, 1, 11)}, CFG)  # 389 + 1 is fine
    with pytest.raises(ProfileError, match="fixes it at 11"):
        load_profile("latency").check("l_module", {**l_module_shapes(), "minutes": (1, 390, 12)}, CFG)
    with pytest.raises(ProfileError, match="batch is 2 here but 1"):
        load_profile("latency").check("l_module", {**l_module_shapes(), "film_beta": (2, 544)}, CFG)


def test_a_profile_larger_than_the_model_is_refused_never_clamped():
    small = tiny_config(max_days=16, max_minutes=300)
    with pytest.raises(ProfileError, match="days up to 64, but the model takes at most 16 look-back days"):
        load_profile("latency").check_model(small)
    with pytest.raises(ProfileError, match="minutes up to 390, but the model takes at most 300 minutes"):
        load_profile("latency").check_model(tiny_config(max_minutes=300))
    load_profile("latency").check_model(tiny_config())  # the shipped profiles fit the default session


def test_bad_profile_files(tmp_path):
    with pytest.raises(UserError, match="no profile 'nope'"):
        load_profile("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[axes]\nbatch = [4, 1, 8]\n')
    with pytest.raises(UserError, match=r"bad.toml: \[axes.days\] missing key"):
        load_profile(bad)
    bad.write_text('name = "bad"\n[axes]\n' + "".join(f"{a} = [4, 1, 8]\n" for a in
                                                      ("batch", "days", "minutes", "new_minutes", "past_minutes")))
    with pytest.raises(UserError, match="not min <= opt <= max"):
        load_profile(bad)
    bad.write_text("name = [")
    with pytest.raises(UserError, match="not valid TOML"):
        load_profile(bad)


AXES = "".join(f"{a} = [1, 1, 8]\n" for a in ("batch", "days", "minutes", "new_minutes"))


@pytest.mark.parametrize(("body", "message"), [
    ('name = "p"\n[axes]\n' + AXES + "past_minutes = [0, 1.5, 8]\n",
     r"\[axes.past_minutes.1\] Input should be a valid integer \(got 1.5\)"),
    ('name = "p"\n[axes]\n' + AXES + "past_minutes = [0, 1, 8]\nbatchh = [1, 1, 1]\n", r"\[axes.batchh\] unknown key"),
    ('name = "p"\naxes = "batch"\n', r"\[axes\] Input should be a valid dictionary"),
    ('name = "p"\n[axes]\n' + AXES + 'past_minutes = [0, "1", 8]\n', r"\[axes.past_minutes.1\] .*valid integer"),
    ('name = "p"\n[axes]\n' + AXES + "past_minutes = [0, 1]\n", r"\[axes.past_minutes\] .*at least 3"),
    ('name = "p"\nspeed = 3\n[axes]\n' + AXES + "past_minutes = [0, 1, 8]\n", r"\[speed\] unknown key"),
])
def test_profile_files_are_validated_in_full(tmp_path, body, message):
    path = tmp_path / "p.toml"
    path.write_text(body)
    with pytest.raises(ConfigFileError, match=message):
        load_profile(path)
