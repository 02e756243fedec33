"""Coarse concepts for deep supervision: which fine classes share a coarse label.

"Deep Supervision with Intermediate Concepts" (Li, Zia, Tran, Yu, Hager, Chandraker, TPAMI 2018)
supervises earlier depths with simpler concepts than the final task. Here the simpler concept is a
grouping of the classes, chosen before looking at any result:

* CIFAR-10: animal (bird, cat, deer, dog, frog, horse) vs vehicle (airplane, automobile, ship,
  truck): 2 groups.
* MNIST (and the offline sample): three stroke-shape groups of the digits,
  0 = closed loops {0, 6, 8, 9}, 1 = straight strokes {1, 4, 7}, 2 = open curves {2, 3, 5}.
  The grouping follows how the digits are usually written (a 4 written open, a 9 with a loop); it
  is a coarse description of shape, not a claim that the groups are easy to separate.
* Fashion-MNIST: tops {t-shirt, pullover, dress, coat, shirt}, trousers, footwear {sandal,
  sneaker, ankle boot}, bags: 4 groups.
"""

from __future__ import annotations

__all__ = ["COARSE_CONCEPTS", "CoarseConcept", "coarse_concept"]

from dataclasses import dataclass

from semcom.errors import SemcomError


@dataclass(frozen=True)
class CoarseConcept:
    """``groups[c]`` is the coarse label of fine class ``c``; ``names[g]`` names group ``g``."""

    groups: tuple[int, ...]
    names: tuple[str, ...]

    @property
    def num_groups(self) -> int:
        return len(self.names)


_DIGITS = CoarseConcept(groups=(0, 1, 2, 2, 1, 2, 0, 1, 0, 0),
                        names=("closed loop", "straight", "open curve"))

COARSE_CONCEPTS: dict[str, CoarseConcept] = {
    "mnist": _DIGITS,
    "mnist-sample": _DIGITS,
    "cifar10": CoarseConcept(groups=(1, 1, 0, 0, 0, 0, 0, 0, 1, 1), names=("animal", "vehicle")),
    "fashion-mnist": CoarseConcept(groups=(0, 1, 0, 0, 0, 2, 0, 2, 3, 2),
                                   names=("top", "trouser", "footwear", "bag")),
}


def coarse_concept(dataset: str) -> CoarseConcept:
    """The coarse concept defined for ``dataset`` (by its registry name)."""
    try:
        return COARSE_CONCEPTS[dataset]
    except KeyError:
        raise SemcomError(f"no coarse concept defined for dataset '{dataset}'; known: "
                          f"{', '.join(sorted(COARSE_CONCEPTS))}") from None
