from __future__ import annotations

from issuer.serials import ALPHABET, SERIAL_LENGTH, is_valid_serial, new_serial, normalize_serial


def test_serial_shape_and_check_character() -> None:
    serial = new_serial()
    assert len(serial) == SERIAL_LENGTH
    assert set(serial) <= set(ALPHABET)
    assert is_valid_serial(serial)


def test_ten_thousand_serials_are_unique_and_valid() -> None:
    serials = {new_serial() for _ in range(10_000)}
    assert len(serials) == 10_000
    assert all(is_valid_serial(serial) for serial in serials)


def test_every_single_substitution_is_caught() -> None:
    for _ in range(50):
        serial = new_serial()
        for position in range(SERIAL_LENGTH):
            for char in ALPHABET:
                if char != serial[position]:
                    assert not is_valid_serial(serial[:position] + char + serial[position + 1 :])


def test_every_adjacent_transposition_is_caught() -> None:
    for _ in range(300):
        serial = new_serial()
        for position in range(SERIAL_LENGTH - 1):
            a, b = serial[position], serial[position + 1]
            if a != b:
                assert not is_valid_serial(serial[:position] + b + a + serial[position + 2 :])


def test_normalize_and_shape_checks() -> None:
    serial = new_serial()
    assert normalize_serial(f"  {serial.lower()}\n") == serial
    assert not is_valid_serial(serial[:-1])
    assert not is_valid_serial(serial + "0")
    assert not is_valid_serial(serial.lower())
    assert not is_valid_serial(serial[:-1] + "*")


def test_every_symbol_turns_up_in_every_random_position() -> None:
    """The 21 random symbols are drawn over the whole alphabet in every position (a number drawn
    from too small a range, or digits written out of order, would leave a position short)."""
    seen = [set() for _ in range(SERIAL_LENGTH - 1)]
    for _ in range(3000):  # a given symbol missing from a given position: about e**-83
        for position, char in enumerate(new_serial()[:-1]):
            seen[position].add(char)
    assert all(symbols == set(ALPHABET) for symbols in seen)
