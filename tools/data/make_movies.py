# The MOVIES table keeps one movie per line.
# ruff: noqa: E501
"""Generate `movies.json`, the sample graph of `agentlib.tools.cypher`.

Movies, the people who acted in and directed them, their genres, and a few critics who review
movies and follow each other. The facts are written out below; only the critics' reviews come
from a seeded random generator, so running this script again writes the same file byte for byte:

    python tools/data/make_movies.py

The file holds `{"nodes": [...], "relationships": [...]}` in the record format that
`agentlib.tools.cypher.graph_from_records` reads.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

SEED = 20240611

# title | released | runtime minutes | genres | directors | actor: role; actor: role ...
MOVIES = """\
The Matrix|1999|136|Sci-Fi,Action|Lana Wachowski,Lilly Wachowski|Keanu Reeves: Neo; Carrie-Anne Moss: Trinity; Laurence Fishburne: Morpheus; Hugo Weaving: Agent Smith
The Matrix Reloaded|2003|138|Sci-Fi,Action|Lana Wachowski,Lilly Wachowski|Keanu Reeves: Neo; Carrie-Anne Moss: Trinity; Laurence Fishburne: Morpheus; Hugo Weaving: Agent Smith
John Wick|2014|101|Action,Thriller|Chad Stahelski|Keanu Reeves: John Wick; Willem Dafoe: Marcus; Ian McShane: Winston
Speed|1994|116|Action,Thriller|Jan de Bont|Keanu Reeves: Jack Traven; Sandra Bullock: Annie Porter; Dennis Hopper: Howard Payne
Gravity|2013|91|Sci-Fi,Thriller|Alfonso Cuarón|Sandra Bullock: Ryan Stone; George Clooney: Matt Kowalski
Forrest Gump|1994|142|Drama,Romance|Robert Zemeckis|Tom Hanks: Forrest Gump; Robin Wright: Jenny Curran; Gary Sinise: Lt. Dan Taylor
Cast Away|2000|143|Drama,Adventure|Robert Zemeckis|Tom Hanks: Chuck Noland; Helen Hunt: Kelly Frears
Saving Private Ryan|1998|169|War,Drama|Steven Spielberg|Tom Hanks: Captain Miller; Matt Damon: Private Ryan; Tom Sizemore: Sergeant Horvath
Catch Me If You Can|2002|141|Crime,Drama|Steven Spielberg|Leonardo DiCaprio: Frank Abagnale Jr.; Tom Hanks: Carl Hanratty; Christopher Walken: Frank Abagnale
The Terminal|2004|128|Comedy,Drama|Steven Spielberg|Tom Hanks: Viktor Navorski; Catherine Zeta-Jones: Amelia Warren
Sleepless in Seattle|1993|105|Romance,Comedy|Nora Ephron|Tom Hanks: Sam Baldwin; Meg Ryan: Annie Reed
You've Got Mail|1998|119|Romance,Comedy|Nora Ephron|Tom Hanks: Joe Fox; Meg Ryan: Kathleen Kelly; Greg Kinnear: Frank Navasky
Apollo 13|1995|140|Drama,Adventure|Ron Howard|Tom Hanks: Jim Lovell; Kevin Bacon: Jack Swigert; Bill Paxton: Fred Haise; Gary Sinise: Ken Mattingly; Ed Harris: Gene Kranz
A Beautiful Mind|2001|135|Drama|Ron Howard|Russell Crowe: John Nash; Jennifer Connelly: Alicia Nash; Ed Harris: William Parcher
Gladiator|2000|155|Action,Drama|Ridley Scott|Russell Crowe: Maximus; Joaquin Phoenix: Commodus; Connie Nielsen: Lucilla
The Martian|2015|144|Sci-Fi,Adventure|Ridley Scott|Matt Damon: Mark Watney; Jessica Chastain: Melissa Lewis; Jeff Daniels: Teddy Sanders
Alien|1979|117|Sci-Fi,Horror|Ridley Scott|Sigourney Weaver: Ripley; Tom Skerritt: Dallas; John Hurt: Kane
Interstellar|2014|169|Sci-Fi,Drama|Christopher Nolan|Matthew McConaughey: Cooper; Anne Hathaway: Brand; Jessica Chastain: Murph; Matt Damon: Dr. Mann
Inception|2010|148|Sci-Fi,Action|Christopher Nolan|Leonardo DiCaprio: Cobb; Joseph Gordon-Levitt: Arthur; Elliot Page: Ariadne; Tom Hardy: Eames
The Dark Knight|2008|152|Action,Crime|Christopher Nolan|Christian Bale: Bruce Wayne; Heath Ledger: Joker; Aaron Eckhart: Harvey Dent; Gary Oldman: Jim Gordon
The Prestige|2006|130|Drama,Mystery|Christopher Nolan|Hugh Jackman: Robert Angier; Christian Bale: Alfred Borden; Scarlett Johansson: Olivia Wenscombe; Michael Caine: Cutter
Memento|2000|113|Mystery,Thriller|Christopher Nolan|Guy Pearce: Leonard Shelby; Carrie-Anne Moss: Natalie; Joe Pantoliano: Teddy
The Departed|2006|151|Crime,Thriller|Martin Scorsese|Leonardo DiCaprio: Billy Costigan; Matt Damon: Colin Sullivan; Jack Nicholson: Frank Costello; Mark Wahlberg: Dignam
Shutter Island|2010|138|Mystery,Thriller|Martin Scorsese|Leonardo DiCaprio: Teddy Daniels; Mark Ruffalo: Chuck Aule; Ben Kingsley: Dr. Cawley
Goodfellas|1990|146|Crime,Drama|Martin Scorsese|Robert De Niro: Jimmy Conway; Ray Liotta: Henry Hill; Joe Pesci: Tommy DeVito
Titanic|1997|194|Romance,Drama|James Cameron|Leonardo DiCaprio: Jack Dawson; Kate Winslet: Rose DeWitt Bukater; Billy Zane: Cal Hockley
The Terminator|1984|107|Sci-Fi,Action|James Cameron|Arnold Schwarzenegger: The Terminator; Linda Hamilton: Sarah Connor; Michael Biehn: Kyle Reese
Aliens|1986|137|Sci-Fi,Action|James Cameron|Sigourney Weaver: Ripley; Michael Biehn: Hicks; Bill Paxton: Hudson
Pulp Fiction|1994|154|Crime,Drama|Quentin Tarantino|John Travolta: Vincent Vega; Samuel L. Jackson: Jules Winnfield; Uma Thurman: Mia Wallace; Bruce Willis: Butch Coolidge; Quentin Tarantino: Jimmie
Kill Bill: Vol. 1|2003|111|Action,Crime|Quentin Tarantino|Uma Thurman: The Bride; Lucy Liu: O-Ren Ishii; David Carradine: Bill
Django Unchained|2012|165|Western,Drama|Quentin Tarantino|Jamie Foxx: Django; Christoph Waltz: Dr. King Schultz; Leonardo DiCaprio: Calvin Candie; Samuel L. Jackson: Stephen
Inglourious Basterds|2009|153|War,Drama|Quentin Tarantino|Brad Pitt: Aldo Raine; Christoph Waltz: Hans Landa; Mélanie Laurent: Shosanna Dreyfus
Fight Club|1999|139|Drama|David Fincher|Brad Pitt: Tyler Durden; Edward Norton: The Narrator; Helena Bonham Carter: Marla Singer
Se7en|1995|127|Crime,Mystery|David Fincher|Brad Pitt: Mills; Morgan Freeman: Somerset; Kevin Spacey: John Doe
The Social Network|2010|120|Drama|David Fincher|Jesse Eisenberg: Mark Zuckerberg; Andrew Garfield: Eduardo Saverin; Justin Timberlake: Sean Parker
The Shawshank Redemption|1994|142|Drama|Frank Darabont|Tim Robbins: Andy Dufresne; Morgan Freeman: Ellis Boyd 'Red' Redding; Bob Gunton: Warden Norton
The Green Mile|1999|189|Drama,Crime|Frank Darabont|Tom Hanks: Paul Edgecomb; Michael Clarke Duncan: John Coffey; David Morse: Brutus Howell
Jerry Maguire|1996|139|Romance,Comedy|Cameron Crowe|Tom Cruise: Jerry Maguire; Cuba Gooding Jr.: Rod Tidwell; Renée Zellweger: Dorothy Boyd
A Few Good Men|1992|138|Drama,Thriller|Rob Reiner|Tom Cruise: Lt. Daniel Kaffee; Jack Nicholson: Col. Nathan R. Jessup; Demi Moore: Lt. Cdr. JoAnne Galloway; Kevin Bacon: Capt. Jack Ross
When Harry Met Sally...|1989|95|Romance,Comedy|Rob Reiner|Billy Crystal: Harry Burns; Meg Ryan: Sally Albright; Carrie Fisher: Marie
Top Gun|1986|110|Action,Drama|Tony Scott|Tom Cruise: Maverick; Kelly McGillis: Charlie; Val Kilmer: Iceman
Edge of Tomorrow|2014|113|Sci-Fi,Action|Doug Liman|Tom Cruise: Cage; Emily Blunt: Rita Vrataski; Bill Paxton: Master Sergeant Farell
Heat|1995|170|Crime,Thriller|Michael Mann|Al Pacino: Vincent Hanna; Robert De Niro: Neil McCauley; Val Kilmer: Chris Shiherlis
The Godfather|1972|175|Crime,Drama|Francis Ford Coppola|Marlon Brando: Vito Corleone; Al Pacino: Michael Corleone; James Caan: Sonny Corleone; Robert Duvall: Tom Hagen
Unforgiven|1992|131|Western,Drama|Clint Eastwood|Clint Eastwood: William Munny; Gene Hackman: Little Bill Daggett; Morgan Freeman: Ned Logan
Million Dollar Baby|2004|132|Drama,Sport|Clint Eastwood|Clint Eastwood: Frankie Dunn; Hilary Swank: Maggie Fitzgerald; Morgan Freeman: Scrap
"""

BORN = """\
Keanu Reeves 1964; Carrie-Anne Moss 1967; Laurence Fishburne 1961; Hugo Weaving 1960;
Lana Wachowski 1965; Lilly Wachowski 1967; Chad Stahelski 1968; Willem Dafoe 1955;
Ian McShane 1942; Jan de Bont 1943; Sandra Bullock 1964; Dennis Hopper 1936;
Alfonso Cuarón 1961; George Clooney 1961; Robert Zemeckis 1952; Tom Hanks 1956;
Robin Wright 1966; Gary Sinise 1955; Helen Hunt 1963; Steven Spielberg 1946; Matt Damon 1970;
Tom Sizemore 1961; Leonardo DiCaprio 1974; Christopher Walken 1943; Catherine Zeta-Jones 1969;
Nora Ephron 1941; Meg Ryan 1961; Greg Kinnear 1963; Ron Howard 1954; Kevin Bacon 1958;
Bill Paxton 1955; Ed Harris 1950; Russell Crowe 1964; Jennifer Connelly 1970; Ridley Scott 1937;
Joaquin Phoenix 1974; Connie Nielsen 1965; Jessica Chastain 1977; Jeff Daniels 1955;
Sigourney Weaver 1949; Tom Skerritt 1933; John Hurt 1940; Christopher Nolan 1970;
Matthew McConaughey 1969; Anne Hathaway 1982; Joseph Gordon-Levitt 1981; Elliot Page 1987;
Tom Hardy 1977; Christian Bale 1974; Heath Ledger 1979; Aaron Eckhart 1968; Gary Oldman 1958;
Hugh Jackman 1968; Scarlett Johansson 1984; Michael Caine 1933; Guy Pearce 1967;
Joe Pantoliano 1951; Martin Scorsese 1942; Jack Nicholson 1937; Mark Wahlberg 1971;
Mark Ruffalo 1967; Ben Kingsley 1943; Robert De Niro 1943; Ray Liotta 1954; Joe Pesci 1943;
James Cameron 1954; Kate Winslet 1975; Billy Zane 1966; Arnold Schwarzenegger 1947;
Linda Hamilton 1956; Michael Biehn 1956; Quentin Tarantino 1963; John Travolta 1954;
Samuel L. Jackson 1948; Uma Thurman 1970; Bruce Willis 1955; Lucy Liu 1968;
David Carradine 1936; Jamie Foxx 1967; Christoph Waltz 1956; Brad Pitt 1963;
Mélanie Laurent 1983; David Fincher 1962; Edward Norton 1969; Helena Bonham Carter 1966;
Morgan Freeman 1937; Kevin Spacey 1959; Jesse Eisenberg 1983; Andrew Garfield 1983;
Justin Timberlake 1981; Frank Darabont 1959; Tim Robbins 1958; Bob Gunton 1945;
Michael Clarke Duncan 1957; David Morse 1953; Cameron Crowe 1957; Tom Cruise 1962;
Cuba Gooding Jr. 1968; Renée Zellweger 1969; Rob Reiner 1947; Demi Moore 1962;
Billy Crystal 1948; Carrie Fisher 1956; Tony Scott 1944; Kelly McGillis 1957; Val Kilmer 1959;
Doug Liman 1965; Emily Blunt 1983; Michael Mann 1943; Al Pacino 1940;
Francis Ford Coppola 1939; Marlon Brando 1924; James Caan 1940; Robert Duvall 1931;
Clint Eastwood 1930; Gene Hackman 1930; Hilary Swank 1974
"""

# Fictional critics: they review movies (seeded) and follow each other (fixed).
CRITICS = ["Jessica Thompson", "James Thompson", "Angela Scope", "Paul Blythe"]
FOLLOWS = [
    ("James Thompson", "Jessica Thompson"),
    ("Angela Scope", "Jessica Thompson"),
    ("Paul Blythe", "Angela Scope"),
    ("Paul Blythe", "Jessica Thompson"),
]
SUMMARIES = [
    "A masterpiece of its genre",
    "Fun, if forgettable",
    "Overlong but rewarding",
    "The cast carries a thin script",
    "Dazzling and exhausting",
    "Quietly devastating",
]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class _Builder:
    """Collects nodes and relationships, making each person and genre node once."""

    def __init__(self) -> None:
        self.born: dict[str, int] = {}
        for entry in BORN.replace("\n", " ").split(";"):
            name, year = entry.strip().rsplit(" ", 1)
            self.born[name] = int(year)
        self.nodes: list[dict[str, Any]] = []
        self.relationships: list[dict[str, Any]] = []
        self.people: dict[str, str] = {}
        self.genres: dict[str, str] = {}

    def person(self, name: str) -> str:
        if name not in self.people:
            self.people[name] = f"person:{_slug(name)}"
            properties: dict[str, Any] = {"name": name}
            if name in self.born:
                properties["born"] = self.born[name]
            self.nodes.append(
                {"id": self.people[name], "labels": ["Person"], "properties": properties}
            )
        return self.people[name]

    def genre(self, name: str) -> str:
        if name not in self.genres:
            self.genres[name] = f"genre:{_slug(name)}"
            self.nodes.append(
                {"id": self.genres[name], "labels": ["Genre"], "properties": {"name": name}}
            )
        return self.genres[name]

    def link(self, source: str, target: str, kind: str, **properties: Any) -> None:
        record: dict[str, Any] = {"source": source, "target": target, "type": kind}
        if properties:
            record["properties"] = properties
        self.relationships.append(record)

    def movie(self, line: str) -> str:
        title, released, runtime, genre_names, directors, cast = line.split("|")
        movie_id = f"movie:{_slug(title)}"
        self.nodes.append(
            {
                "id": movie_id,
                "labels": ["Movie"],
                "properties": {"title": title, "released": int(released), "runtime": int(runtime)},
            }
        )
        for name in genre_names.split(","):
            self.link(movie_id, self.genre(name), "IN_GENRE")
        for name in directors.split(","):
            self.link(self.person(name), movie_id, "DIRECTED")
        for entry in cast.split(";"):
            name, role = (part.strip() for part in entry.split(":", 1))
            self.link(self.person(name), movie_id, "ACTED_IN", roles=[role])
        return movie_id


def dataset() -> dict[str, list[dict[str, Any]]]:
    """Build the graph as records: `{"nodes": [...], "relationships": [...]}`."""
    builder = _Builder()
    movie_ids = [builder.movie(line) for line in MOVIES.strip().splitlines()]
    generator = random.Random(SEED)
    for critic in CRITICS:
        critic_id = builder.person(critic)
        for movie_id in sorted(generator.sample(movie_ids, 6)):
            rating = generator.randint(40, 100)
            summary = generator.choice(SUMMARIES)
            builder.link(critic_id, movie_id, "REVIEWED", rating=rating, summary=summary)
    for follower, followed in FOLLOWS:
        builder.link(builder.people[follower], builder.people[followed], "FOLLOWS")
    return {"nodes": builder.nodes, "relationships": builder.relationships}


def main() -> None:
    """Write `movies.json` next to this script."""
    path = Path(__file__).with_name("movies.json")
    text = json.dumps(dataset(), ensure_ascii=False, indent=1)
    path.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
