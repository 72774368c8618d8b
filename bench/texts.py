"""Words the benchmark corpus is made of: company stems, people, subjects and sentences
in the four languages of the help desk's customers (it, hu, ru, en).

Plain data, so that ``corpus.py`` holds only the mechanism.  The sentences are what a
customer of an IT help desk writes; their mix of lengths and accents is what makes the
parse, charset and quote-stripping steps do realistic work.
"""

from __future__ import annotations

# Company stems per language: the stem names the company and makes its domain.
STEMS = {
    "it": ["Rossi Meccanica", "Bianchi Trasporti", "Ferrari Arredi", "Colombo Tessile",
           "Ricci Alimentari", "Marino Impianti", "Greco Logistica", "Bruno Edilizia",
           "Gallo Farmaceutici", "Conti Assicurazioni", "De Luca Ottica", "Costa Marmi",
           "Fontana Vini"],
    "hu": ["Nagy Gépgyár", "Kovács Szállítmányozás", "Tóth Bútor", "Szabó Nyomda",
           "Horváth Élelmiszer", "Varga Építő", "Kiss Informatika", "Molnár Textil",
           "Németh Gyógyszer", "Farkas Üveg", "Balogh Autó", "Papp Energia"],
    "ru": ["Волга Трейд", "Сибирь Логистик", "Урал Металл", "Нева Софт", "Кама Строй",
           "Дон Агро", "Амур Транс", "Енисей Энерго", "Ладога Фарм", "Онега Лес",
           "Байкал Телеком", "Ока Текстиль"],
    "en": ["Harbour Freight", "Pennine Foods", "Thames Legal", "Cotswold Print",
           "Kestrel Energy", "Mersey Motors", "Oakridge Clinics", "Bramble Retail",
           "Northgate Finance", "Solent Marine", "Quarry Stone", "Larch Software",
           "Wessex Water Works"],
}

SUFFIX = {"it": "Srl", "hu": "Kft", "ru": "OOO", "en": "Ltd"}
TLD = {"it": "it", "hu": "hu", "ru": "ru", "en": "co.uk"}
CALENDAR = {"it": "it-office", "hu": "hu-office", "ru": "ru-office", "en": None}

# Transliteration for Russian domains (a domain is ASCII).
CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m",
                     "n", "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "sch",
                     "", "y", "", "e", "yu", "ya"], strict=True))

FIRST = {
    "it": ["Mario", "Giulia", "Luca", "Francesca", "Paolo", "Chiara", "Andrea", "Elena"],
    "hu": ["Péter", "Katalin", "László", "Zsófia", "Gábor", "Éva", "Tamás", "Ildikó"],
    "ru": ["Иван", "Ольга", "Сергей", "Наталья", "Алексей", "Мария", "Дмитрий", "Елена"],
    "en": ["John", "Sarah", "Michael", "Emma", "David", "Laura", "James", "Helen"],
}
LAST = {
    "it": ["Rossi", "Russo", "Esposito", "Romano", "Galli", "Lombardi", "Moretti", "Barbieri"],
    "hu": ["Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Kiss", "Molnár"],
    "ru": ["Иванов", "Смирнова", "Кузнецов", "Попова", "Соколов", "Лебедева", "Козлов",
           "Новикова"],
    "en": ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts"],
}

SUBJECTS = {
    "it": ["La stampante del 2° piano stampa pagine bianche",
           "Non riesco ad accedere alla VPN",
           "Posta elettronica molto lenta da stamattina",
           "Richiesta nuovo utente per l'ufficio acquisti",
           "Il gestionale si blocca all'apertura delle fatture",
           "Password scaduta, non riesco a cambiarla",
           "Errore di sincronizzazione della cartella condivisa",
           "Il monitor della reception è spento"],
    "hu": ["Nem működik a nyomtató a második emeleten", "Nem tudok belépni a VPN-re",
           "Lassú az e-mail reggel óta", "Új felhasználó kérése a beszerzésnek",
           "Lefagy a számlázó program", "Lejárt a jelszavam, nem tudom módosítani",
           "Hibás a megosztott mappa szinkronizálása", "Nem kapcsol be a recepció monitora"],
    "ru": ["Не печатает принтер на втором этаже", "Не могу подключиться к VPN",
           "Почта очень медленно работает с утра", "Нужна учётная запись для отдела закупок",
           "Зависает программа учёта при открытии счетов", "Истёк пароль, не получается сменить",
           "Ошибка синхронизации общей папки", "Не включается монитор на ресепшене"],
    "en": ["Printer on the 2nd floor prints blank pages", "Cannot connect to the VPN",
           "Email very slow since this morning", "New user account for purchasing",
           "Accounting software freezes when opening invoices",
           "Password expired, cannot change it",
           "Shared folder sync error", "Reception monitor does not turn on"],
}

GREETING = {"it": "Buongiorno,", "hu": "Jó napot kívánok!", "ru": "Добрый день!",
            "en": "Hello,"}
THANKS = {"it": "Grazie e cordiali saluti,", "hu": "Köszönöm, üdvözlettel:",
          "ru": "Спасибо, с уважением,", "en": "Thanks and best regards,"}

SENTENCES = {
    "it": ["Da questa mattina il problema si ripete ogni volta che provo ad aprire il programma.",
           "Ho già provato a riavviare il computer, ma non è cambiato nulla.",
           "Il messaggio di errore dice che il server non è raggiungibile.",
           "Anche i colleghi dell'amministrazione hanno lo stesso problema.",
           "Potete verificare con urgenza? Abbiamo una consegna entro venerdì.",
           "Vi allego la schermata dell'errore così potete capire meglio.",
           "Il problema è iniziato dopo l'aggiornamento di ieri sera.",
           "Sono disponibile al telefono per tutta la giornata, interno 214.",
           "Non so se sia collegato, ma la rete sembra più lenta del solito.",
           "È possibile intervenire da remoto senza interrompere il lavoro?"],
    "hu": ["Ma reggel óta minden alkalommal előjön a hiba, amikor megnyitom a programot.",
           "Már újraindítottam a számítógépet, de semmi sem változott.",
           "A hibaüzenet szerint a kiszolgáló nem érhető el.",
           "A könyvelésen a kollégáknak is ugyanez a problémájuk.",
           "Meg tudnák nézni sürgősen? Péntekig le kell adnunk egy munkát.",
           "Csatolom a hibaüzenetről készült képernyőképet.",
           "A probléma a tegnap esti frissítés után kezdődött.",
           "Egész nap elérhető vagyok telefonon, a mellék 214.",
           "Nem tudom, összefügg-e, de a hálózat is lassúbb a szokásosnál.",
           "Lehetséges távolról megoldani, hogy ne álljon le a munka?"],
    "ru": ["С утра ошибка повторяется каждый раз, когда я открываю программу.",
           "Я уже перезагрузил компьютер, но ничего не изменилось.",
           "В сообщении об ошибке написано, что сервер недоступен.",
           "У коллег из бухгалтерии такая же проблема.",
           "Можете проверить срочно? У нас сдача проекта в пятницу.",
           "Прикладываю снимок экрана с ошибкой.",
           "Проблема началась после вчерашнего обновления.",
           "Я на связи весь день, внутренний номер 214.",
           "Не знаю, связано ли это, но сеть тоже работает медленнее обычного.",
           "Можно ли решить это удалённо, не останавливая работу?"],
    "en": ["Since this morning the problem happens every time I open the program.",
           "I have already restarted the computer, but nothing changed.",
           "The error message says that the server cannot be reached.",
           "Colleagues in accounting have the same problem.",
           "Could you look at it urgently? We have a delivery due on Friday.",
           "I attach a screenshot of the error so you can see it.",
           "The problem started after last night's update.",
           "I am available by phone all day, extension 214.",
           "Not sure if it is related, but the network is slower than usual.",
           "Can it be fixed remotely without stopping our work?"],
}

REPLIES = {
    "it": ["Grazie, ora funziona di nuovo.", "Il problema si è ripresentato dopo pranzo.",
           "Vi confermo che il collega è disponibile alle 15.", "Ecco le informazioni richieste."],
    "hu": ["Köszönöm, most már működik.", "Ebéd után újra jelentkezett a hiba.",
           "A kolléga 15 órakor ráér.", "Küldöm a kért adatokat."],
    "ru": ["Спасибо, теперь работает.", "После обеда проблема появилась снова.",
           "Коллега будет на месте в 15 часов.", "Высылаю запрошенную информацию."],
    "en": ["Thanks, it works again now.", "The problem came back after lunch.",
           "My colleague is available at 3 pm.", "Here is the information you asked for."],
}

# The line a mail client writes above the quoted history, per language.
QUOTE_HEADER = {
    "it": "Il giorno {date} {name} <{addr}> ha scritto:",
    "hu": "{date} időpontban {name} <{addr}> ezt írta:",
    "ru": "{date}, {name} <{addr}> написал(а):",
    "en": "On {date}, {name} <{addr}> wrote:",
}

REPLY_PREFIX = {"it": ["R:", "Re:"], "hu": ["Vá:", "Re:"], "ru": ["Re:", "Отв:"],
                "en": ["Re:", "RE:"]}

SIGNATURE_ROLE = {"it": "Ufficio amministrazione", "hu": "Pénzügyi osztály",
                  "ru": "Бухгалтерия", "en": "Accounts department"}
