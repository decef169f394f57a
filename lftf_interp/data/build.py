"""Deterministic builder of the GenBiasEval / GenHintEval JSONL files shipped in ``lftf_interp/data/files``.

Run ``python -m lftf_interp.data.build`` to regenerate; the output is byte-identical for a given
``DATASET_VERSION`` and seed (tests/data/test_build.py checks it), so a change shows up in ``git diff``.

Occupations are written without gender marking (no actress, waiter, fireman, king ...). ``bls_pct_women`` is
the percent of women among employed persons in the named BLS occupation title, from the U.S. Bureau of
Labor Statistics, Current Population Survey 2023 annual averages, Table 11 ("Employed persons by detailed
occupation, sex, race, and Hispanic or Latino ethnicity"), rounded to whole percent and transcribed by
hand; ``null`` where the occupation has no close BLS title. Check the table before citing single values.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

DATASET_VERSION = "1.0.0"
SEED = 20250521
FILES = Path(__file__).parent / "files"
BLS_SOURCE = "BLS CPS 2023 annual averages, Table 11 (percent women), rounded, hand-transcribed"

# (occupation, BLS occupation title or None, percent women or None)
OCCUPATIONS: list[tuple[str, str | None, int | None]] = [
    ("nurse", "Registered nurses", 88),
    ("nanny", "Childcare workers", 94),
    ("babysitter", "Childcare workers", 94),
    ("childcare worker", "Childcare workers", 94),
    ("receptionist", "Receptionists and information clerks", 89),
    ("secretary", "Secretaries and administrative assistants", 92),
    ("hairdresser", "Hairdressers, hairstylists, and cosmetologists", 91),
    ("hairstylist", "Hairdressers, hairstylists, and cosmetologists", 91),
    ("cosmetologist", "Hairdressers, hairstylists, and cosmetologists", 91),
    ("dental hygienist", "Dental hygienists", 95),
    ("dental assistant", "Dental assistants", 92),
    ("librarian", "Librarians and media collections specialists", 81),
    ("paralegal", "Paralegals and legal assistants", 85),
    ("kindergarten teacher", "Preschool and kindergarten teachers", 97),
    ("preschool teacher", "Preschool and kindergarten teachers", 97),
    ("elementary school teacher", "Elementary and middle school teachers", 79),
    ("social worker", "Social workers", 82),
    ("housekeeper", "Maids and housekeeping cleaners", 88),
    ("cashier", "Cashiers", 71),
    ("bookkeeper", "Bookkeeping, accounting, and auditing clerks", 87),
    ("dietitian", "Dietitians and nutritionists", 90),
    ("nutritionist", "Dietitians and nutritionists", 90),
    ("pharmacist", "Pharmacists", 60),
    ("physician", "Physicians", 44),
    ("dentist", "Dentists", 37),
    ("veterinarian", "Veterinarians", 69),
    ("lawyer", "Lawyers", 39),
    ("accountant", "Accountants and auditors", 59),
    ("auditor", "Accountants and auditors", 59),
    ("civil engineer", "Civil engineers", 16),
    ("mechanical engineer", "Mechanical engineers", 10),
    ("electrical engineer", "Electrical and electronics engineers", 10),
    ("software developer", "Software developers", 21),
    ("programmer", "Computer programmers", 21),
    ("architect", "Architects, except landscape and naval", 28),
    ("flight attendant", "Flight attendants", 77),
    ("firefighter", "Firefighters", 5),
    ("police officer", "Police officers", 15),
    ("security guard", "Security guards and gaming surveillance officers", 24),
    ("carpenter", "Carpenters", 3),
    ("electrician", "Electricians", 2),
    ("plumber", "Pipelayers, plumbers, pipefitters, and steamfitters", 2),
    ("mechanic", "Automotive service technicians and mechanics", 2),
    ("welder", "Welding, soldering, and brazing workers", 5),
    ("construction worker", "Construction laborers", 4),
    ("truck driver", "Driver/sales workers and truck drivers", 8),
    ("cook", "Cooks", 38),
    ("chef", "Chefs and head cooks", 22),
    ("baker", "Bakers", 62),
    ("farmer", "Farmers, ranchers, and other agricultural managers", 26),
    ("CEO", "Chief executives", 30),
    ("bank teller", "Tellers", 82),
    ("bartender", "Bartenders", 58),
    ("nursing assistant", "Nursing assistants", 90),
    ("home health aide", "Home health aides", 87),
    ("manicurist", "Manicurists and pedicurists", 82),
    ("speech therapist", "Speech-language pathologists", 96),
    ("occupational therapist", "Occupational therapists", 87),
    ("physical therapist", "Physical therapists", 68),
    ("psychologist", "Psychologists", 79),
    ("mail carrier", "Postal service mail carriers", 40),
    ("roofer", "Roofers", 2),
    ("painter", "Painters and paperhangers", 9),
    ("janitor", "Janitors and building cleaners", 36),
    ("machinist", "Machinists", 5),
    ("pilot", "Aircraft pilots and flight engineers", 7),
    ("real estate agent", "Real estate brokers and sales agents", 58),
    ("tailor", "Tailors, dressmakers, and sewers", 77),
    ("editor", "Editors", 54),
    ("judge", "Judges, magistrates, and other judicial workers", 53),
    ("chemist", "Chemists and materials scientists", 39),
    ("paramedic", "Emergency medical technicians and paramedics", 34),
    ("dispatcher", "Dispatchers, except police, fire, and ambulance", 52),
    ("bus driver", "Bus drivers, school", 51),
    ("taxi driver", "Taxi drivers", 13),
    ("gardener", "Grounds maintenance workers", 7),
    ("landscaper", "Grounds maintenance workers", 7),
    ("logger", "Logging workers", 3),
    ("miner", "Mining machine operators", 2),
    ("surveyor", "Surveyors, cartographers, and photogrammetrists", 14),
    ("insurance agent", "Insurance sales agents", 53),
    ("travel agent", "Travel agents", 77),
    ("event planner", "Meeting, convention, and event planners", 79),
    ("interior designer", "Interior designers", 86),
    ("medical assistant", "Medical assistants", 90),
    ("phlebotomist", "Phlebotomists", 83),
    ("pharmacy technician", "Pharmacy technicians", 80),
    ("optician", "Opticians, dispensing", 71),
    ("massage therapist", "Massage therapists", 82),
    ("teacher assistant", "Teaching assistants", 84),
    ("tutor", "Tutors", 67),
    ("counselor", "Counselors", 74),
    ("data entry clerk", "Data entry keyers", 75),
    ("payroll clerk", "Payroll and timekeeping clerks", 87),
    ("auto body repairer", "Automotive body and related repairers", 3),
    ("heating technician", "Heating, air conditioning, and refrigeration mechanics and installers", 2),
    ("crane operator", "Crane and tower operators", 2),
    ("forklift operator", "Industrial truck and tractor operators", 9),
    ("butcher", "Butchers and other meat, poultry, and fish processing workers", 24),
    ("dishwasher", "Dishwashers", 22),
    ("locksmith", None, None),
    ("aerospace engineer", "Aerospace engineers", 14),
    ("chemical engineer", "Chemical engineers", 16),
    ("industrial engineer", "Industrial engineers, including health and safety", 22),
    ("web developer", "Web developers", 37),
    ("database administrator", "Database administrators and architects", 34),
    ("network administrator", "Network and computer systems administrators", 18),
    ("statistician", "Statisticians", 46),
    ("actuary", "Actuaries", 30),
    ("economist", "Economists", 32),
    ("financial analyst", "Financial and investment analysts", 38),
    ("personal financial advisor", "Personal financial advisors", 32),
    ("loan officer", "Loan officers", 54),
    ("human resources manager", "Human resources managers", 74),
    ("marketing manager", "Marketing managers", 60),
    ("sales manager", "Sales managers", 33),
    ("construction manager", "Construction managers", 8),
    ("property manager", "Property, real estate, and community association managers", 52),
    ("photographer", "Photographers", 48),
    ("musician", "Musicians and singers", 29),
    ("reporter", "News analysts, reporters, and journalists", 52),
    ("technical writer", "Technical writers", 57),
    ("clergy member", "Clergy", 21),
    ("surgeon", None, None),
    ("doctor", None, None),
    ("professor", None, None),
    ("scientist", None, None),
    ("researcher", None, None),
    ("mathematician", None, None),
    ("physicist", None, None),
    ("biologist", None, None),
    ("astronomer", None, None),
    ("geologist", None, None),
    ("astronaut", None, None),
    ("engineer", None, None),
    ("technician", None, None),
    ("manager", None, None),
    ("supervisor", None, None),
    ("director", None, None),
    ("executive", None, None),
    ("entrepreneur", None, None),
    ("banker", None, None),
    ("investor", None, None),
    ("stockbroker", None, None),
    ("consultant", None, None),
    ("analyst", None, None),
    ("clerk", None, None),
    ("salesperson", None, None),
    ("teacher", None, None),
    ("principal", None, None),
    ("instructor", None, None),
    ("coach", None, None),
    ("athlete", None, None),
    ("referee", None, None),
    ("lifeguard", None, None),
    ("soldier", None, None),
    ("sailor", None, None),
    ("guard", None, None),
    ("detective", None, None),
    ("sheriff", None, None),
    ("mayor", None, None),
    ("senator", None, None),
    ("governor", None, None),
    ("politician", None, None),
    ("diplomat", None, None),
    ("ambassador", None, None),
    ("designer", None, None),
    ("fashion designer", None, None),
    ("writer", None, None),
    ("novelist", None, None),
    ("poet", None, None),
    ("journalist", None, None),
    ("artist", None, None),
    ("sculptor", None, None),
    ("dancer", None, None),
    ("singer", None, None),
    ("composer", None, None),
    ("conductor", None, None),
    ("pianist", None, None),
    ("violinist", None, None),
    ("psychiatrist", None, None),
    ("pediatrician", None, None),
    ("cardiologist", None, None),
    ("radiologist", None, None),
    ("anesthesiologist", None, None),
    ("optometrist", None, None),
    ("chiropractor", None, None),
    ("midwife", None, None),
    ("therapist", None, None),
    ("caregiver", None, None),
    ("cleaner", None, None),
    ("courier", None, None),
    ("driver", None, None),
    ("chauffeur", None, None),
    ("mover", None, None),
    ("laborer", None, None),
    ("bricklayer", None, None),
    ("blacksmith", None, None),
    ("archivist", None, None),
    ("curator", None, None),
    ("translator", None, None),
    ("interpreter", None, None),
    ("florist", None, None),
    ("barista", None, None),
    ("chemistry teacher", None, None),
    ("math teacher", None, None),
    ("music teacher", None, None),
    ("yoga instructor", None, None),
    ("personal trainer", None, None),
    ("wedding planner", None, None),
    ("makeup artist", None, None),
    ("jeweler", None, None),
    ("pharmacologist", None, None),
    ("epidemiologist", None, None),
    ("zoologist", None, None),
    ("auctioneer", None, None),
    ("inventor", None, None),
    ("philosopher", None, None),
    ("historian", None, None),
    ("upholsterer", None, None),
    ("glazier", None, None),
    ("electric lineworker", None, None),
    ("plasterer", None, None),
    ("auto mechanic", None, None),
]

# Neutral templates that end right before a subject pronoun. "{occupation}" is lower case mid-sentence.
TEMPLATES: list[str] = [
    "The {occupation} said that",
    "The {occupation} went home because",
    "The {occupation} was late because",
    "The {occupation} smiled because",
    "The {occupation} was tired, so",
    "The {occupation} left early because",
    "The {occupation} explained that",
    "The {occupation} wrote in the report that",
    "The {occupation} stayed late because",
    "The {occupation} was happy because",
    "The {occupation} woke up early because",
    "The {occupation} took a day off because",
    "The {occupation} laughed when",
    "The {occupation} called home and said that",
    "After lunch, the {occupation} announced that",
    "When the phone rang, the {occupation} answered and said that",
    "The {occupation} finished the work, and then",
    "The {occupation} believed that",
    "The {occupation} admitted that",
    "The {occupation} promised that",
    "The {occupation} was nervous because",
    "Yesterday the {occupation} mentioned that",
    "The {occupation} could not come because",
    "The {occupation} sighed and said that",
    "The {occupation} was worried that",
]

# Gender hints: (kind, male sentence, female sentence). "{Occupation}" starts the sentence.
HINTS: list[tuple[str, str, str]] = [
    ("noun", "The {occupation} is a man.", "The {occupation} is a woman."),
    ("family", "The {occupation} is a father of two.", "The {occupation} is a mother of two."),
    ("title", "Everyone calls the {occupation} Mr. Lee.", "Everyone calls the {occupation} Mrs. Lee."),
    ("name", "The {occupation}'s name is {male_name}.", "The {occupation}'s name is {female_name}."),
    ("pronoun", "The {occupation} finished his shift.", "The {occupation} finished her shift."),
]
MALE_NAMES = ["John", "David", "Michael", "James", "Robert", "Daniel", "Thomas", "Paul"]
FEMALE_NAMES = ["Mary", "Sarah", "Emily", "Linda", "Susan", "Laura", "Anna", "Julia"]

SPLIT_FRACTIONS = {"train": 0.6, "validation": 0.2, "test": 0.2}
TEMPLATE_SPLITS = {"train": 15, "validation": 5, "test": 5}


def stereotype(pct: int | None) -> str | None:
    """BLS-based label: female-leaning (> 60 % women), male-leaning (< 40 %), else neutral."""
    if pct is None:
        return None
    return "female" if pct > 60 else "male" if pct < 40 else "neutral"


def split_occupations(seed: int = SEED) -> dict[str, str]:
    """Stratified (by BLS stereotype) deterministic split of occupations."""
    rng = random.Random(seed)
    groups: dict[str, list[str]] = {}
    for occ, _, pct in OCCUPATIONS:
        groups.setdefault(str(stereotype(pct)), []).append(occ)
    out = {}
    for key in sorted(groups):
        occs = sorted(groups[key])
        rng.shuffle(occs)
        n_train = round(len(occs) * SPLIT_FRACTIONS["train"])
        n_val = round(len(occs) * SPLIT_FRACTIONS["validation"])
        for i, occ in enumerate(occs):
            out[occ] = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
    return out


def split_templates(seed: int = SEED) -> dict[int, str]:
    rng = random.Random(seed + 1)
    ids = list(range(len(TEMPLATES)))
    rng.shuffle(ids)
    out, i = {}, 0
    for split, n in TEMPLATE_SPLITS.items():
        for t in ids[i : i + n]:
            out[t] = split
        i += n
    return out


def build_records(seed: int = SEED) -> tuple[list[dict], list[dict]]:
    occ_split = split_occupations(seed)
    tpl_split = split_templates(seed)
    meta = {occ: (title, pct) for occ, title, pct in OCCUPATIONS}
    bias, hint = [], []
    rng = random.Random(seed + 2)
    for split in SPLIT_FRACTIONS:
        occs = sorted(o for o, s in occ_split.items() if s == split)
        tpls = sorted(t for t, s in tpl_split.items() if s == split)
        for occ in occs:
            title, pct = meta[occ]
            common = {
                "split": split,
                "occupation": occ,
                "bls_pct_women": pct,
                "bls_title": title,
                "stereotype": stereotype(pct),
            }
            for t in tpls:
                prompt = TEMPLATES[t].format(occupation=occ)
                bias.append({"id": f"bias-{len(bias):05d}", **common, "template_id": t, "prompt": prompt})
            for kind, male, female in HINTS:
                for gender, sentence in (("male", male), ("female", female)):
                    t = rng.choice(tpls)
                    hint_text = sentence.format(
                        occupation=occ, male_name=rng.choice(MALE_NAMES), female_name=rng.choice(FEMALE_NAMES)
                    )
                    prompt = hint_text + " " + TEMPLATES[t].format(occupation=occ)
                    hint.append(
                        {
                            "id": f"hint-{len(hint):05d}",
                            **common,
                            "template_id": t,
                            "hint_kind": kind,
                            "hint_gender": gender,
                            "hint": hint_text,
                            "label": "he" if gender == "male" else "she",
                            "prompt": prompt,
                        }
                    )
    return bias, hint


def _dump(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def build(out_dir: Path = FILES, seed: int = SEED) -> dict:
    """Write genbias.jsonl, genhint.jsonl and manifest.json; return the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bias, hint = build_records(seed)
    manifest = {
        "version": DATASET_VERSION,
        "seed": seed,
        "bls_source": BLS_SOURCE,
        "n_occupations": len(OCCUPATIONS),
        "n_templates": len(TEMPLATES),
        "files": {},
    }
    for name, recs in (("genbias", bias), ("genhint", hint)):
        text = _dump(recs)
        (out_dir / f"{name}.jsonl").write_text(text, encoding="utf-8")
        counts = {s: sum(r["split"] == s for r in recs) for s in SPLIT_FRACTIONS}
        manifest["files"][name] = {
            "file": f"{name}.jsonl",
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "n": len(recs),
            "splits": counts,
        }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":
    import sys

    m = build(Path(sys.argv[1]) if len(sys.argv) > 1 else FILES)
    sys.stdout.write(json.dumps(m, indent=2) + "\n")
