import shutil

import pytest

from lftf_interp.data import (
    load_bolukbasi,
    load_winobias,
    load_winobias_occupations,
    load_winogender,
    winogender_prompts,
)
from lftf_interp.errors import DatasetError


def test_winogender(external_dir):
    df = load_winogender(external_dir / "winogender")
    assert len(df) == 120 and df.occupation.nunique() == 60
    assert df.bls_pct_female.notna().all()
    ds = winogender_prompts(external_dir / "winogender")
    assert len(ds) == 50 and all("$" not in p for p in ds.prompts)
    assert "The technician told the customer that" in ds.prompts


def test_winobias(external_dir):
    df = load_winobias(external_dir / "winobias", "dev")
    assert len(df) == 4 * 396
    assert set(df.pronoun.dropna()) <= {"he", "she", "him", "her", "his", "hers", "himself", "herself"}
    occ = load_winobias_occupations(external_dir / "winobias")
    assert set(occ.stereotype) == {"male", "female"} and len(occ) == 40


def test_bolukbasi(external_dir):
    df = load_bolukbasi(external_dir / "professions_bolukbasi")
    assert len(df) == 320 and df.stereotypical.between(-1, 1).all()


def test_tampered_file_is_refused(external_dir, tmp_path):
    d = tmp_path / "wg"
    shutil.copytree(external_dir / "winogender", d)
    (d / "templates.tsv").write_text("occupation\tx\n")
    with pytest.raises(DatasetError, match="sha256"):
        load_winogender(d)
    with pytest.raises(DatasetError, match="does not exist"):
        load_winogender(tmp_path / "nowhere")


def test_winobias_pairs_differ_only_in_the_pronoun(external_dir):
    from lftf_interp.data.external import winobias_pairs

    df = winobias_pairs(external_dir / "winobias", "test")
    assert len(df) > 780 and set(df.type) == {1, 2}
    assert set(zip(df.male, df.female, strict=True)) == {("he", "she"), ("him", "her"), ("his", "her")}
    for r in df.itertuples():
        assert r.pro.startswith(r.prefix) and r.anti.startswith(r.prefix)
        first = {
            r.pro[len(r.prefix) :].split()[0].strip(".,").lower(),
            r.anti[len(r.prefix) :].split()[0].strip(".,").lower(),
        }
        assert first == {r.male, r.female} and r.pronoun in first


def test_winogender_pairs(external_dir):
    from lftf_interp.data.external import winogender_pairs

    df = winogender_pairs(external_dir / "winogender")
    assert len(df) == 240
    r = df[(df.occupation == "technician") & (df.participant == "customer") & (df.answer == "1")].iloc[0]
    assert " he " in r.male and " she " in r.female and r.pro == "male"  # BLS 40 % women
    assert (df.pro == "female").sum() == (df.bls_pct_female >= 50).sum()


def test_winobias_dev_parts_share_no_occupation(external_dir):
    from lftf_interp.data.external import winobias_occupation_parts, winobias_pairs

    path = external_dir / "winobias"
    dev = winobias_pairs(path, "dev")
    fit, select = winobias_pairs(path, "dev-fit"), winobias_pairs(path, "dev-select")
    occ = {part: {o for t in df["occupations"] for o in t} for part, df in (("fit", fit), ("select", select))}
    assert occ["fit"] and occ["select"] and not occ["fit"] & occ["select"]
    assert set(fit["pro"]) <= set(dev["pro"]) and set(select["pro"]) <= set(dev["pro"])
    assert len(fit) + len(select) < len(dev)  # pairs naming one occupation of each part are in neither
    assert (dev["occupations"].map(len) >= 2).mean() > 0.99  # both participants found in almost every pair
    parts = winobias_occupation_parts(path)
    assert parts == winobias_occupation_parts(path)  # seeded
    for _, n in load_winobias_occupations(path).groupby("stereotype")["occupation"]:
        assert sum(parts[o] == "select" for o in n) == round(0.4 * len(n))  # 0.4 of each stereotype's
    for df in (fit, select):  # both parts keep pro-male and pro-female pairs in balance
        share = (df["pro_gender"] == "male").mean()
        assert 0.4 < share < 0.6
    with pytest.raises(DatasetError, match="dev-select"):
        winobias_pairs(path, "train")


def test_one_rule_finds_the_external_data_for_the_api_and_the_cli(tmp_path, monkeypatch):
    """$LFTF_EXTERNAL first, else a shared/external folder in or above the working directory or the checkout:
    the Python API run from anywhere inside the checkout finds what the CLI finds."""
    from lftf_interp.data import external

    monkeypatch.setenv("LFTF_EXTERNAL", str(tmp_path / "given"))
    assert external.external_root() == tmp_path / "given"
    monkeypatch.delenv("LFTF_EXTERNAL")
    for near in (tmp_path / "shared" / "external", tmp_path / "a" / "shared" / "external"):
        near.mkdir(parents=True)
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert external.external_root() == tmp_path / "a" / "shared" / "external"  # the nearest one
    (tmp_path / "a" / "shared" / "external").rmdir()
    assert external.external_root() == tmp_path / "shared" / "external"


def test_the_api_reads_winobias_from_the_checkout_without_the_environment(external_dir, monkeypatch):
    from lftf_interp.data import external

    monkeypatch.delenv("LFTF_EXTERNAL", raising=False)
    monkeypatch.setattr(external, "download", lambda *a, **k: pytest.fail("it tried to download"))
    assert external.external_file("winobias", "anti_stereotyped_type1.txt.dev").is_file()
