"""Ground truth for token attribution on a real LM: prompts whose next token is decided by known positions.

- *Induction*: a list of random common words (each one token with its leading space) followed by a repeat of
  its first few words; the next word is the one that followed the last repeated word the first time, so the
  deciding position is that word's earlier occurrence (an induction head copies it).
- *Facts*: a sentence whose answer is decided by its subject ("The Eiffel Tower is in the city of" ->
  " Paris"); the deciding positions are the subject's tokens.

``induction_prompts`` and ``fact_prompts`` keep only prompts the model completes with the expected token (its
greedy next token), so a method is judged on what the model actually does. ``truth_rates`` scores any
attribution method by how often a deciding position is among its top-k.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass

import torch

from interp.errors import InterpError
from interp.models import greedy_ids

__all__ = ["TruthPrompt", "induction_prompts", "fact_prompts", "truth_rates", "WORDS", "FACTS"]

WORDS = (
    "apple river chair music window garden yellow doctor bread mountain table horse paper water cloud stone forest "
    "ocean silver orange lemon tiger eagle sugar coffee winter summer bottle island pencil rabbit castle bridge mirror "
    "candle basket butter camera engine farmer finger flower guitar hammer jacket kitchen ladder monkey needle pocket "
    "rocket shadow spider tunnel violin wallet wheel zebra"
).split()

# (prompt, answer with its leading space, subject: the words that decide the answer)
FACTS = [
    ("The Eiffel Tower is in the city of", " Paris", "Eiffel Tower"),
    ("The Colosseum is in the city of", " Rome", "Colosseum"),
    ("The Statue of Liberty is in the city of", " New", "Statue of Liberty"),
    ("Big Ben is in the city of", " London", "Big Ben"),
    ("The Brandenburg Gate is in the city of", " Berlin", "Brandenburg Gate"),
    ("The Kremlin is in the city of", " Moscow", "Kremlin"),
    ("The Golden Gate Bridge is in the city of", " San", "Golden Gate Bridge"),
    ("The Sydney Opera House is in the city of", " Sydney", "Sydney Opera House"),
    ("The Acropolis is in the city of", " Athens", "Acropolis"),
    ("The Forbidden City is in the city of", " Beijing", "Forbidden City"),
    ("The Taj Mahal is in the country of", " India", "Taj Mahal"),
    ("The Great Wall is in the country of", " China", "Great Wall"),
    ("The pyramids of Giza are in the country of", " Egypt", "pyramids of Giza"),
    ("Mount Fuji is in the country of", " Japan", "Mount Fuji"),
    ("The capital of France is", " Paris", "France"),
    ("The capital of Italy is", " Rome", "Italy"),
    ("The capital of Germany is", " Berlin", "Germany"),
    ("The capital of Spain is", " Madrid", "Spain"),
    ("The capital of Japan is", " Tokyo", "Japan"),
    ("The capital of Russia is", " Moscow", "Russia"),
    ("The capital of China is", " Beijing", "China"),
    ("The capital of England is", " London", "England"),
    ("The capital of Greece is", " Athens", "Greece"),
    ("The capital of Egypt is", " Cairo", "Egypt"),
    ("The capital of Canada is", " Ottawa", "Canada"),
    ("The capital of Portugal is", " Lisbon", "Portugal"),
    ("The capital of Austria is", " Vienna", "Austria"),
    ("The capital of Poland is", " Warsaw", "Poland"),
    ("The capital of Ireland is", " Dublin", "Ireland"),
    ("The capital of Norway is", " Oslo", "Norway"),
    ("The capital of Sweden is", " Stockholm", "Sweden"),
    ("The capital of Kenya is", " Nairobi", "Kenya"),
    ("The capital of Peru is", " Lima", "Peru"),
    ("The capital of Thailand is", " Bangkok", "Thailand"),
    ("The capital of South Korea is", " Seoul", "South Korea"),
    ("The capital of Argentina is", " Buenos", "Argentina"),
    ("The capital of Hungary is", " Budapest", "Hungary"),
    ("The capital of Cuba is", " Havana", "Cuba"),
    ("The capital of Finland is", " Helsinki", "Finland"),
    ("The capital of Denmark is", " Copenhagen", "Denmark"),
    ("The capital of Belgium is", " Brussels", "Belgium"),
    ("The capital of the Netherlands is", " Amsterdam", "Netherlands"),
    ("The capital of Australia is", " Canberra", "Australia"),
    ("The capital of Iran is", " Tehran", "Iran"),
    ("The capital of Iraq is", " Baghdad", "Iraq"),
    ("The capital of Turkey is", " Ankara", "Turkey"),
    ("The capital of Mexico is", " Mexico", "Mexico"),
    ("The capital of Chile is", " Santiago", "Chile"),
    ("The capital of Vietnam is", " Hanoi", "Vietnam"),
    ("The capital of Indonesia is", " Jakarta", "Indonesia"),
    ("The capital of the Philippines is", " Manila", "Philippines"),
    ("The capital of Colombia is", " Bog", "Colombia"),
    ("The capital of Venezuela is", " Caracas", "Venezuela"),
    ("The capital of Ukraine is", " Kyiv", "Ukraine"),
    ("The capital of Scotland is", " Edinburgh", "Scotland"),
    ("The capital of Switzerland is", " Bern", "Switzerland"),
    ("The capital of Nigeria is", " Abuja", "Nigeria"),
    ("The capital of Pakistan is", " Islamabad", "Pakistan"),
    ("The capital of Israel is", " Jerusalem", "Israel"),
    ("The capital of Saudi Arabia is", " Riyadh", "Saudi Arabia"),
    ("The capital of Afghanistan is", " Kabul", "Afghanistan"),
    ("The capital of Syria is", " Damascus", "Syria"),
    ("The capital of Lebanon is", " Beirut", "Lebanon"),
    ("The capital of Czech Republic is", " Prague", "Czech Republic"),
    ("The capital of Romania is", " Bucharest", "Romania"),
    ("The capital of Bulgaria is", " Sofia", "Bulgaria"),
    ("The capital of Serbia is", " Belgrade", "Serbia"),
    ("The capital of Croatia is", " Zagreb", "Croatia"),
    ("The capital of Iceland is", " Reykjavik", "Iceland"),
    ("The capital of Ethiopia is", " Addis", "Ethiopia"),
    ("The capital of Morocco is", " Rabat", "Morocco"),
    ("The capital of Malaysia is", " Kuala", "Malaysia"),
    ("The capital of Nepal is", " Kathmandu", "Nepal"),
    ("The capital of Bangladesh is", " Dhaka", "Bangladesh"),
    ("The capital of Jamaica is", " Kingston", "Jamaica"),
    ("The capital of Ghana is", " Accra", "Ghana"),
    ("People in France speak", " French", "France"),
    ("People in Germany speak", " German", "Germany"),
    ("People in Italy speak", " Italian", "Italy"),
    ("People in Spain speak", " Spanish", "Spain"),
    ("People in Japan speak", " Japanese", "Japan"),
    ("People in China speak", " Chinese", "China"),
    ("People in Russia speak", " Russian", "Russia"),
    ("People in Portugal speak", " Portuguese", "Portugal"),
    ("People in Greece speak", " Greek", "Greece"),
    ("People in Brazil speak", " Portuguese", "Brazil"),
    ("People in Mexico speak", " Spanish", "Mexico"),
    ("People in Poland speak", " Polish", "Poland"),
    ("People in Sweden speak", " Swedish", "Sweden"),
    ("People in Turkey speak", " Turkish", "Turkey"),
    ("People in Korea speak", " Korean", "Korea"),
    ("People in the Netherlands speak", " Dutch", "Netherlands"),
    ("The currency of Japan is the", " yen", "Japan"),
    ("The currency of the United Kingdom is the", " pound", "United Kingdom"),
    ("The currency of India is the", " rupee", "India"),
    ("The currency of Russia is the", " ruble", "Russia"),
    ("The Nile is a river in", " Africa", "Nile"),
    ("The Amazon rainforest is in", " South", "Amazon"),
    ("The Louvre is a museum in", " Paris", "Louvre"),
    ("Shakespeare was born in", " England", "Shakespeare"),
    ("Albert Einstein was born in", " Germany", "Albert Einstein"),
    ("Mozart was born in", " Austria", "Mozart"),
    ("The Mona Lisa was painted by Leonardo da", " Vinci", "Mona Lisa"),
    ("Romeo and Juliet was written by William", " Shakespeare", "Romeo and Juliet"),
    ("The iPhone is made by", " Apple", "iPhone"),
    ("Windows is an operating system made by", " Microsoft", "Windows"),
    # appended 2026-12-06 (issue 35: >= 50 facts Gemma 3 270M answers); the first 106 stay first
    ("The capital of Brazil is", " Bras", "Brazil"),
    ("The capital of New Zealand is", " Wellington", "New Zealand"),
    ("The capital of India is", " New", "India"),
    ("The capital of Cambodia is", " Phnom", "Cambodia"),
    ("The capital of Qatar is", " Doha", "Qatar"),
    ("The capital of Jordan is", " Amman", "Jordan"),
    ("The capital of Tunisia is", " Tunis", "Tunisia"),
    ("The capital of Algeria is", " Algiers", "Algeria"),
    ("The capital of Libya is", " Tripoli", "Libya"),
    ("The capital of Sudan is", " Khartoum", "Sudan"),
    ("The capital of Uganda is", " Kampala", "Uganda"),
    ("The capital of Zimbabwe is", " Harare", "Zimbabwe"),
    ("The capital of Zambia is", " Lusaka", "Zambia"),
    ("The capital of Senegal is", " Dakar", "Senegal"),
    ("The capital of Estonia is", " Tallinn", "Estonia"),
    ("The capital of Latvia is", " Riga", "Latvia"),
    ("The capital of Lithuania is", " Vilnius", "Lithuania"),
    ("The capital of Slovakia is", " Bratislava", "Slovakia"),
    ("The capital of Slovenia is", " Ljubljana", "Slovenia"),
    ("The capital of Albania is", " Tirana", "Albania"),
    ("The capital of Armenia is", " Yerevan", "Armenia"),
    ("The capital of Georgia is", " Tbilisi", "Georgia"),
    ("The capital of Azerbaijan is", " Baku", "Azerbaijan"),
    ("The capital of Uzbekistan is", " Tashkent", "Uzbekistan"),
    ("The capital of Sri Lanka is", " Colombo", "Sri Lanka"),
    ("The capital of Ecuador is", " Quito", "Ecuador"),
    ("The capital of Uruguay is", " Montevideo", "Uruguay"),
    ("The capital of Nicaragua is", " Managua", "Nicaragua"),
    ("The capital of Belarus is", " Minsk", "Belarus"),
    ("The capital of Malta is", " Valletta", "Malta"),
    ("The capital of Cyprus is", " Nicosia", "Cyprus"),
    ("The capital of Oman is", " Muscat", "Oman"),
    ("The capital of Mongolia is", " Ulaanbaatar", "Mongolia"),
    ("The capital of Laos is", " Vientiane", "Laos"),
    ("People in Finland speak", " Finnish", "Finland"),
    ("People in Denmark speak", " Danish", "Denmark"),
    ("People in Norway speak", " Norwegian", "Norway"),
    ("People in Hungary speak", " Hungarian", "Hungary"),
    ("People in Iran speak", " Persian", "Iran"),
    ("People in Israel speak", " Hebrew", "Israel"),
    ("People in Egypt speak", " Arabic", "Egypt"),
    ("People in Ukraine speak", " Ukrainian", "Ukraine"),
    ("People in Thailand speak", " Thai", "Thailand"),
    ("People in Vietnam speak", " Vietnamese", "Vietnam"),
    ("People in Indonesia speak", " Indonesian", "Indonesia"),
    ("People in Argentina speak", " Spanish", "Argentina"),
    ("People in Austria speak", " German", "Austria"),
    ("People in Romania speak", " Romanian", "Romania"),
    ("People in Bulgaria speak", " Bulgarian", "Bulgaria"),
    ("People in Serbia speak", " Serbian", "Serbia"),
    ("People in Croatia speak", " Croatian", "Croatia"),
    ("People in Iceland speak", " Icelandic", "Iceland"),
    ("People in Chile speak", " Spanish", "Chile"),
    ("People in Peru speak", " Spanish", "Peru"),
    ("People in Cuba speak", " Spanish", "Cuba"),
    ("People in Colombia speak", " Spanish", "Colombia"),
    ("The Parthenon is in the city of", " Athens", "Parthenon"),
    ("The Vatican is in the city of", " Rome", "Vatican"),
    ("Times Square is in the city of", " New", "Times Square"),
    ("The Hollywood sign is in the city of", " Los", "Hollywood sign"),
    ("The Space Needle is in the city of", " Seattle", "Space Needle"),
    ("The Sagrada Familia is in the city of", " Barcelona", "Sagrada Familia"),
    ("The Leaning Tower of Pisa is in the city of", " Pisa", "Leaning Tower of Pisa"),
    ("Red Square is in the city of", " Moscow", "Red Square"),
    ("The Blue Mosque is in the city of", " Istanbul", "Blue Mosque"),
    ("The Burj Khalifa is in the city of", " Dubai", "Burj Khalifa"),
    ("The CN Tower is in the city of", " Toronto", "CN Tower"),
    ("The Petronas Towers are in the city of", " Kuala", "Petronas Towers"),
    ("The Hagia Sophia is in the city of", " Istanbul", "Hagia Sophia"),
    ("Buckingham Palace is in the city of", " London", "Buckingham Palace"),
    ("The Empire State Building is in the city of", " New", "Empire State Building"),
    ("Wall Street is in the city of", " New", "Wall Street"),
    ("Machu Picchu is in the country of", " Peru", "Machu Picchu"),
    ("Angkor Wat is in the country of", " Cambodia", "Angkor Wat"),
    ("Stonehenge is in the country of", " England", "Stonehenge"),
    ("The Matterhorn is in the country of", " Switzerland", "Matterhorn"),
    ("Petra is in the country of", " Jordan", "Petra"),
    ("Chichen Itza is in the country of", " Mexico", "Chichen Itza"),
    ("Mount Kilimanjaro is in the country of", " Tanzania", "Mount Kilimanjaro"),
    ("Mount Everest is in the country of", " Nepal", "Mount Everest"),
]


@dataclass(frozen=True)
class TruthPrompt:
    """A prompt ``tokens`` [T] (BOS first when the tokenizer adds one) whose next token ``target_id`` is decided by
    the positions ``sources`` (indices into ``tokens``). ``kind``: "induction" or "fact"; ``text``: the prompt."""

    tokens: torch.Tensor
    target_id: int
    sources: tuple[int, ...]
    kind: str
    text: str


def _single(tok, word: str) -> int | None:
    ids = tok(word, add_special_tokens=False).input_ids
    return ids[0] if len(ids) == 1 else None


def _greedy(model, tokens: torch.Tensor) -> int:
    return int(greedy_ids(model, tokens)[0, -1])


def induction_prompts(model, n: int = 60, *, seed: int = 0, n_words: int = 10, correct_only: bool = True,
                      max_tries: int = 2000) -> list[TruthPrompt]:
    """``n`` induction prompts (module docstring) of ``n_words`` random ``WORDS``, the first ``j`` (n_words // 2 .. n_words - 2)
    repeated; returns a list of ``TruthPrompt`` with one source each (the target word's first occurrence)."""
    tok = model.tokenizer
    words = [w for w in WORDS if _single(tok, " " + w) is not None]
    if len(words) < n_words:
        raise InterpError(f"only {len(words)} of the induction words are single tokens for this tokenizer; need {n_words}")
    rng = random.Random(seed)
    out: list[TruthPrompt] = []
    for _ in range(max_tries):
        if len(out) == n:
            break
        ws = rng.sample(words, n_words)
        j = rng.randint(n_words // 2, n_words - 2)
        text = " ".join(ws + ws[:j])
        tokens = model.to_tokens(text)[0].cpu()
        head = len(tokens) - (n_words + j)  # tokens before the first word (BOS)
        ids = [_single(tok, (" " if i else "") + w) for i, w in enumerate(ws + ws[:j])]
        if None in ids or tokens[head:].tolist() != ids:
            continue
        target = ids[j]  # the word after ws[j-1] the first time: ws[j], with its leading space
        if correct_only and _greedy(model, tokens) != target:
            continue
        out.append(TruthPrompt(tokens, int(target), (head + j,), "induction", text))
    if len(out) < n:
        warnings.warn(f"only {len(out)} of {n} induction prompts found in {max_tries} tries", stacklevel=2)
    return out


def _span(tok, tokens: torch.Tensor, text: str, subject: str) -> tuple[int, ...]:
    """Positions of the tokens of ``tokens`` that overlap ``subject``'s characters in ``text``."""
    start = text.index(subject)
    end = start + len(subject)
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    head = len(tokens) - len(enc.input_ids)
    return tuple(head + i for i, (a, b) in enumerate(enc.offset_mapping) if a < end and b > start)


def fact_prompts(model, *, correct_only: bool = True) -> list[TruthPrompt]:
    """The ``FACTS`` the model completes with the expected first answer token; sources: the subject's tokens."""
    tok = model.tokenizer
    out = []
    for text, answer, subject in FACTS:
        tokens = model.to_tokens(text)[0].cpu()
        target = tok(answer, add_special_tokens=False).input_ids[0]
        if correct_only and _greedy(model, tokens) != target:
            continue
        out.append(TruthPrompt(tokens, int(target), _span(tok, tokens, text, subject), "fact", text))
    return out


def truth_rates(model, prompts: list[TruthPrompt], method: str, ks: tuple[int, ...] = (1, 3), **options) -> dict:
    """Attribute each prompt's target with ``method``; returns ``{"top1": rate, "top3": rate, ..., "hits": {k:
    [bool per prompt]}, "attributions": [TokenAttribution]}``, a hit being a source among the method's top-k."""
    from interp.attribution.registry import attribute

    hits: dict[int, list[bool]] = {k: [] for k in ks}
    atts = []
    for p in prompts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = attribute(model, p.tokens, p.target_id, method=method, **options)
        atts.append(a)
        for k in ks:
            hits[k].append(bool(set(a.top(k)) & set(p.sources)))
    out: dict = {f"top{k}": sum(h) / max(len(h), 1) for k, h in hits.items()}
    out["hits"], out["attributions"] = hits, atts
    return out
