"""Common given names, so "Sarah didn't check the logs" reads as a person even when the
bot's database has never met a Sarah (a post-mortem linted in CI, a contractor, a name
from another team). Case matters where it is used: only a capitalised "Will" or "May" is
taken for a name. Written for this project from common given names across many languages;
no list is complete, which is why known people (`--people`, the database) come first.
"""

from __future__ import annotations

_NAMES = """
aaron abby abdul abigail ada adam adebayo adele adil aditi aditya adrian adriana agnes ahmed ahmad
aisha ajay akira alan albert alberto alejandro aleksandr alex alexa alexander alexandra alexei alexis
alfred ali alice alicia alina alison allison alvaro amanda amber amelia amir amit amy ana anand
anastasia anders andre andrea andreas andrei andres andrew andy angela angelica angelo anil anita
ann anna anne annie anthony antoine anton antonio anu anya arjun arnav arthur arun asha ashley ashok
astrid audrey austin ava axel ayesha barbara barry beatriz becky ben benjamin bernard beth betty
billy bjorn blake bob bobby bogdan boris brad bradley brandon brenda brent brian bridget
brittany bruce bruno bryan caleb cameron camila carl carla carlos carmen carol caroline carolyn
carrie casey catherine cathy cecilia chad charles charlie charlotte chen cheng cheryl chloe chris
christian christina christine christopher cindy claire clara claudia clement cody colin connor
craig cristina cynthia dan dana daniel daniela danielle danny daria dave david dean deborah
debbie deepak denise dennis derek diana diane diego dimitri dina dmitri dmitry dominic don donald
donna dora doris dorothy doug douglas duncan dylan ed eddie edgar eduardo edward egor elaine elena
eli elias elijah elisa elizabeth ella ellen elliot emily emma enrique eric erica erik erin ethan
eugene eva evan evelyn fabian fatima federico felipe felix fernando fiona florian frances francesca
francesco francis francisco frank fred freya gabriel gabriela gail gareth gary gavin george gerald
gina giovanni giulia giuseppe glenn gloria gordon grace graham greg gregory gustavo hana hannah
hans harold harry harsh hassan heather hector heidi helen helena henrik henry hiro hiroshi hugo
ian igor ines ingrid irene isaac isabel isabella ivan jack jacob jacqueline jake james jamie jan
jane janet janice jason javier jay jean jeff jeffrey jennifer jenny jeremy jerry jesse jessica jim
jimmy jin joan joanna joao joe joel johan johannes john johnny jon jonas jonathan jordan jorge jose
joseph josh joshua juan judith judy julia julian julie julien jun justin kai kamal karen karim
karl kate katherine kathleen kathryn kathy katie kavya keith kelly ken kenji kenneth kevin kim
kimberly kiran klaus kris kristen kyle lakshmi lara larry laura lauren leah lee lena leo leon
leonardo lewis liam lin linda lisa liu lily lorenzo louis louise lucas lucia lucy luis luke lydia
magnus maria marco marcus margaret maria mariana marie marina mario mark marta martha martin mary
mateo matt matteo matthew maureen maxim maya megan mehmet mei melissa meng mia michael michelle
miguel mike mikhail min ming mohamed mohammad mohammed monica morgan nadia nancy naomi natalia
natalie nathan neha neil nick nicholas nicole nikhil nikita nikolai nina noah noor nora olga oliver
olivia omar oscar owen pablo pam pamela paolo patricia patrick paul paula pavel pedro peng peter
philip phillip pierre pooja prakash priya rachel rafael rahul raj rajesh ralph ramesh ramon randy
raphael ravi raymond rebecca reza ricardo richard rick rita rob robert roberto robin rodrigo
roger rohan roman ronald rosa ross roy ruby russell ruth ryan sabrina sahil sakura sally sam
samantha samir samuel sandeep sandra sanjay sara sarah sasha satoshi scott sean sebastian sergei
sergey seth shane shannon sharon shawn sheila shirley simon simone sofia sonia sophia sophie
stacy stefan stella stephanie stephen steve steven stuart sue sunil susan suresh svetlana sven
tanya tara taylor ted teresa terry thomas tiffany tim timothy tina todd tom tomas tommy tony
tracy travis tyler valentina vanessa vera veronica victor victoria vijay vikram vincent vivek
vladimir walter wang wei wendy william xavier xin yan yang yasmin yuki yuri yusuf zach
zachary zhang zoe
"""

FIRST_NAMES: frozenset[str] = frozenset(_NAMES.split())
