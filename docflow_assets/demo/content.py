"""What each document class says: line generators driven by one random source."""

from __future__ import annotations

import random
from collections.abc import Callable

from docflow_assets.demo.vocabulary import (
    CITIES,
    COMPANIES,
    FILLER,
    FIRST_NAMES,
    GROCERIES,
    ITEMS,
    JOBS,
    LAST_NAMES,
    MEMO_SUBJECTS,
    SCHOOLS,
    SKILLS,
    STREETS,
    TOPICS,
)

Lines = list[tuple[str, str]]  # (style, text); style is one of "title", "heading", "body", "mono"


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def address(rng: random.Random) -> list[str]:
    return [
        f"{rng.randint(1, 250)} {rng.choice(STREETS)}",
        f"{rng.choice(CITIES)} {rng.randint(10000, 99999)}",
    ]


def day(rng: random.Random) -> str:
    month = rng.choice(
        [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ]
    )
    return f"{month} {rng.randint(1, 28)}, {rng.randint(2019, 2026)}"


def short_day(rng: random.Random) -> str:
    return f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2019, 2026)}"


def money(rng: random.Random, low: float = 2, high: float = 900) -> float:
    return round(rng.uniform(low, high), 2)


def sentence(rng: random.Random, topic: list[str], words: int) -> str:
    picked = [rng.choice(topic if rng.random() < 0.45 else FILLER) for _ in range(words)]
    return " ".join(picked).capitalize() + "."


def paragraph(rng: random.Random, topic: list[str], sentences: int) -> list[str]:
    text = " ".join(sentence(rng, topic, rng.randint(6, 12)) for _ in range(sentences))
    return wrap(text, rng.randint(58, 72))


def wrap(text: str, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines


def item_rows(rng: random.Random, pool: list[str], count: int) -> tuple[list[str], float]:
    rows, total = [], 0.0
    for name in rng.sample(pool, count):
        quantity = rng.randint(1, 12)
        price = money(rng, 1, 300)
        total += quantity * price
        rows.append(f"{name:<22} {quantity:>3} x {price:>8.2f} {quantity * price:>10.2f}")
    return rows, round(total, 2)


def invoice(rng: random.Random) -> Lines:
    company = rng.choice(COMPANIES)
    rows, subtotal = item_rows(rng, ITEMS, rng.randint(3, 6))
    tax = round(subtotal * rng.choice([0.05, 0.1, 0.2]), 2)
    return [
        ("title", "INVOICE"),
        ("heading", company),
        *[("body", line) for line in address(rng)],
        ("body", f"Invoice No: INV-{rng.randint(1000, 99999)}"),
        ("body", f"Invoice Date: {day(rng)}"),
        ("body", f"Due Date: {day(rng)}"),
        ("heading", "Bill To:"),
        ("body", person(rng)),
        ("body", rng.choice(COMPANIES)),
        ("mono", "Description             Qty   Unit Price     Amount"),
        *[("mono", row) for row in rows],
        ("mono", f"Subtotal {subtotal:>40.2f}"),
        ("mono", f"Tax {tax:>45.2f}"),
        ("heading", f"Total Due: {subtotal + tax:.2f} USD"),
        (
            "body",
            f"Payment terms: Net {rng.choice([15, 30, 45])} days. Bank transfer to account "
            f"{rng.randint(10**7, 10**8)}.",
        ),
        ("body", "Please include the invoice number with your payment."),
    ]


def receipt(rng: random.Random) -> Lines:
    rows, total = item_rows(rng, GROCERIES, rng.randint(4, 8))
    paid = total + money(rng, 0, 20)
    return [
        ("title", rng.choice(["FRESH MART", "CORNER GROCERY", "DAILY MARKET", "QUICK STOP"])),
        *[("body", line) for line in address(rng)],
        ("body", f"Tel {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"),
        ("heading", "SALES RECEIPT"),
        (
            "mono",
            f"{short_day(rng)} {rng.randint(7, 21):02d}:{rng.randint(0, 59):02d}  "
            f"Till {rng.randint(1, 9)}",
        ),
        *[("mono", row) for row in rows],
        ("mono", f"TOTAL {total:>10.2f}"),
        ("mono", f"CASH {paid:>11.2f}"),
        ("mono", f"CHANGE {paid - total:>9.2f}"),
        ("body", f"Items sold: {len(rows)}"),
        ("body", "Thank you for shopping with us!"),
        ("body", "Keep this receipt for returns within 30 days."),
    ]


def letter(rng: random.Random) -> Lines:
    sender, recipient = person(rng), person(rng)
    body: Lines = [("body", line) for line in address(rng)]
    body += [("body", day(rng)), ("body", recipient), *[("body", line) for line in address(rng)]]
    body.append(("body", f"Dear {rng.choice(['Mr.', 'Ms.', 'Dr.'])} {recipient.split()[1]},"))
    for _ in range(rng.randint(2, 4)):
        body += [("body", line) for line in paragraph(rng, TOPICS["letter"], rng.randint(2, 4))]
    body += [
        (
            "body",
            rng.choice(["Sincerely,", "Yours faithfully,", "Kind regards,", "With best wishes,"]),
        ),
        ("body", sender),
    ]
    return body


def memo(rng: random.Random) -> Lines:
    body: Lines = [
        ("title", rng.choice(["MEMORANDUM", "MEMO", "INTERNAL MEMO"])),
        ("body", f"TO: All {rng.choice(['Staff', 'Managers', 'Sales Team', 'Engineers'])}"),
        ("body", f"FROM: {person(rng)}, {rng.choice(JOBS)}"),
        ("body", f"DATE: {day(rng)}"),
        (
            "body",
            f"SUBJECT: {rng.choice(MEMO_SUBJECTS)}",
        ),
    ]
    for _ in range(rng.randint(2, 3)):
        body += [("body", line) for line in paragraph(rng, TOPICS["memo"], rng.randint(2, 4))]
    body.append(("body", "Please direct questions to your department manager."))
    return body


def resume(rng: random.Random) -> Lines:
    name = person(rng)
    body: Lines = [
        ("title", name),
        (
            "body",
            f"{name.split()[0].lower()}.{name.split()[1].lower()}@example.com | "
            f"{rng.randint(200, 999)}-555-{rng.randint(1000, 9999)}",
        ),
        ("heading", "Professional Summary"),
        (
            "body",
            f"{rng.choice(JOBS)} with {rng.randint(2, 20)} years of experience in "
            f"{rng.choice(SKILLS)} and {rng.choice(SKILLS)}.",
        ),
        ("heading", "Experience"),
    ]
    for _ in range(rng.randint(2, 3)):
        start = rng.randint(2005, 2020)
        body += [
            (
                "body",
                f"{rng.choice(JOBS)}, {rng.choice(COMPANIES)}  "
                f"{start} - {start + rng.randint(1, 5)}",
            ),
            ("body", f"- Led {rng.choice(SKILLS)} initiatives for a team of {rng.randint(3, 25)}"),
            (
                "body",
                f"- Improved {rng.choice(['delivery', 'reporting', 'sales', 'quality'])} "
                f"by {rng.randint(5, 60)} percent",
            ),
        ]
    body += [
        ("heading", "Education"),
        (
            "body",
            f"B.Sc. {rng.choice(['Computer Science', 'Economics', 'Biology', 'Engineering'])}, "
            f"{rng.choice(SCHOOLS)}, {rng.randint(1995, 2018)}",
        ),
        ("heading", "Skills"),
        ("body", ", ".join(rng.sample(SKILLS, 5))),
        ("body", "References available upon request."),
    ]
    return body


def contract(rng: random.Random) -> Lines:
    first, second = rng.sample(COMPANIES, 2)
    body: Lines = [
        ("title", rng.choice(["SERVICE AGREEMENT", "CONSULTING CONTRACT", "LEASE AGREEMENT"])),
        *[
            ("body", line)
            for line in wrap(
                f"This Agreement is entered into on {day(rng)} by and between {first} "
                f"(the Client) and {second} (the Contractor).",
                66,
            )
        ],
        ("body", "WHEREAS the parties wish to set out the terms of their engagement;"),
    ]
    for number, clause in enumerate(["Term", "Payment", "Confidentiality", "Termination"], 1):
        body.append(("heading", f"{number}. {clause}"))
        body += [("body", line) for line in paragraph(rng, TOPICS["contract"], 2)]
    body += [
        ("body", "IN WITNESS WHEREOF the parties have executed this Agreement."),
        ("body", f"Signature: ____________  {person(rng)}"),
        ("body", f"Signature: ____________  {person(rng)}"),
    ]
    return body


def purchase_order(rng: random.Random) -> Lines:
    rows, total = item_rows(rng, ITEMS, rng.randint(3, 6))
    return [
        ("title", "PURCHASE ORDER"),
        ("heading", rng.choice(COMPANIES)),
        ("body", f"PO Number: PO-{rng.randint(10000, 99999)}"),
        ("body", f"Order Date: {day(rng)}"),
        ("heading", "Vendor:"),
        ("body", rng.choice(COMPANIES)),
        *[("body", line) for line in address(rng)],
        ("heading", "Ship To:"),
        *[("body", line) for line in address(rng)],
        (
            "body",
            f"Requested delivery: {day(rng)}  Shipping via: "
            f"{rng.choice(['Ground', 'Air freight', 'Courier'])}",
        ),
        ("mono", "Item                    Qty   Unit Cost      Line Total"),
        *[("mono", row) for row in rows],
        ("heading", f"Order Total: {total:.2f}"),
        ("body", f"Authorized by: {person(rng)}, Purchasing"),
        ("body", "Please confirm receipt of this order and the expected ship date."),
    ]


def bank_statement(rng: random.Random) -> Lines:
    balance = money(rng, 500, 9000)
    opening = balance
    rows = []
    for _ in range(rng.randint(6, 10)):
        amount = money(rng, 5, 1200)
        credit = rng.random() < 0.35
        balance = round(balance + amount if credit else balance - amount, 2)
        what = (
            rng.choice(["SALARY", "TRANSFER IN"])
            if credit
            else rng.choice(["CARD PAYMENT", "DIRECT DEBIT", "ATM WITHDRAWAL", "STANDING ORDER"])
        )
        rows.append(
            f"{short_day(rng)} {what:<16} {'' if credit else f'{amount:.2f}':>9} "
            f"{f'{amount:.2f}' if credit else '':>9} {balance:>10.2f}"
        )
    return [
        ("title", rng.choice(["FIRST NATIONAL BANK", "CITY SAVINGS BANK", "UNION TRUST BANK"])),
        ("heading", "Account Statement"),
        ("body", person(rng)),
        *[("body", line) for line in address(rng)],
        (
            "body",
            f"Account Number: {rng.randint(10**9, 10**10)}  Sort Code: "
            f"{rng.randint(10, 99)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
        ),
        ("body", f"Statement Period: {short_day(rng)} to {short_day(rng)}"),
        ("mono", f"Opening Balance {opening:>10.2f}"),
        ("mono", "Date       Description         Debit    Credit    Balance"),
        *[("mono", row) for row in rows],
        ("mono", f"Closing Balance {balance:>10.2f}"),
        ("body", "Interest rate: variable. Report unrecognised transactions promptly."),
    ]


GENERATORS: dict[str, Callable[[random.Random], Lines]] = {
    "invoice": invoice,
    "receipt": receipt,
    "letter": letter,
    "memo": memo,
    "resume": resume,
    "contract": contract,
    "purchase_order": purchase_order,
    "bank_statement": bank_statement,
}
DOCUMENT_CLASSES = tuple(GENERATORS)
