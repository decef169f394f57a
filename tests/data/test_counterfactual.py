from lftf_interp.data import load_axis
from lftf_interp.data.build import split_occupations
from lftf_interp.data.counterfactual import counterfactual_pairs, swap_counterparts, swap_gender


def test_swap_gender_by_hand():
    assert swap_gender("He told her that his nurse saw him.") == "She told him that her nurse saw her."
    assert (
        swap_gender("The doctor gave her the book and thanked her.")
        == "The doctor gave him the book and thanked him."
    )
    assert swap_gender("Mr. Smith met the men; HE left.") == "Mrs. Smith met the women; SHE left."
    assert swap_gender("Her car, her.") == "His car, him."
    assert swap_gender("Nobody is named here.") is None
    assert (
        swap_gender("The actress met her brother.") == "The actress met his brother."
    )  # nouns of the probe stay


def test_pairs_name_only_train_occupations_and_are_seeded():
    split = split_occupations()
    train = next(o for o, s in split.items() if s == "train" and " " not in o)
    test = next(o for o, s in split.items() if s == "test" and " " not in o)
    docs = [
        f"The {train} said that he would come back later. The {test} said that he would come back later. "
        f"Two {train}s met her at the door of the old house. The {train} was tired today and went home.",
    ]
    pairs = counterfactual_pairs(docs, seed=0)
    assert sorted(pairs) == sorted(
        [
            (
                f"The {train} said that he would come back later.",
                f"The {train} said that she would come back later.",
            ),
            (
                f"Two {train}s met her at the door of the old house.",
                f"Two {train}s met him at the door of the old house.",
            ),
        ]
    )
    assert (
        counterfactual_pairs(docs, n=1, seed=0) == pairs[:1] and counterfactual_pairs(docs, seed=0) == pairs
    )


def test_swap_counterparts_by_hand():
    pairs = load_axis("gender").counterparts
    assert (
        swap_counterparts("The caring mother went to her crying daughter.", pairs)
        == "The caring father went to his crying son."
    )
    assert (
        swap_counterparts("He sees himself in a negative light.", pairs)
        == "She sees herself in a negative light."
    )
    assert swap_counterparts("I gave it to her. SISTER, come!", pairs) == "I gave it to him. BROTHER, come!"
    assert swap_counterparts("Her car is red.", pairs) == "His car is red."
    assert swap_counterparts("The nurse is tired.", pairs) is None
    assert swap_counterparts("A cat and a dog.", [("cat", "dog")]) == "A dog and a cat."  # both ways at once
