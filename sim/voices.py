"""Core: the simulated world's words and habits, as data.

What callers say about each kind of emergency (in Chinese and English), how
many of them call and on which hotline, what cameras label it, how soon the
sensors and cameras see it, the districts' streets and landmarks, and the
names callers give. :mod:`sim.world` draws from these with a seeded random
generator; nothing here decides anything.
"""

from __future__ import annotations

# --- what the world says: call narratives, camera labels, descriptions -------------------

# (English, Chinese) narratives by what is happening; "{addr}" is where. Each must file
# under its category by adapters.hotline's rules (the tests check every one). Chinese is
# written with "," here and "\uff0c" in the record.
SAY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fire": (("Black smoke pouring out of a window at {addr}",
              "There's a fire in a shop at {addr}, I can see flames",
              "Smoke coming from the roof of the building at {addr}",
              "Fire in a restaurant kitchen at {addr}, people are running out"),
             ("{addr}有栋楼着火了, 窗户往外冒烟", "{addr}一家店铺起火了, 能看到明火",
              "{addr}楼顶在冒烟, 好像是火灾", "{addr}饭店厨房着火了, 人都跑出来了")),
    "medical": (("An old man collapsed and is unconscious at {addr}",
                 "My father is having a cardiac episode at {addr}, please hurry",
                 "A woman is having a seizure at the bus stop at {addr}",
                 "Someone is not breathing at {addr}, we need an ambulance"),
                ("{addr}有位老人晕倒了, 叫不醒", "我爸心脏病犯了, 在{addr}, 快派急救车",
                 "{addr}有人昏迷了", "{addr}有人呼吸困难, 快来人")),
    "traffic": (("Two cars in a collision at {addr}, one driver is hurt",
                 "Vehicle accident at {addr}, a car hit an e-bike rider",
                 "Car crash at the junction by {addr}, the road is blocked",
                 "A lorry and a taxi crashed at {addr}"),
                ("{addr}发生车祸了, 有人受伤", "{addr}两辆车追尾了, 路堵住了",
                 "{addr}一辆货车和电动车相撞", "{addr}有辆车翻车了")),
    "pileup": (("Pile-up at {addr}, at least five cars, people are trapped",
                "Multi-car crash at {addr}, there is smoke from one of the cars",
                "Big collision at {addr}, several vehicles, someone is bleeding",
                "Cars keep crashing into each other at {addr}, send help"),
               ("{addr}好几辆车连环追尾, 有人被困", "{addr}发生多车相撞, 有人受伤流血",
                "{addr}连环车祸, 车堵了一长串", "{addr}多辆车追尾, 有辆车在冒烟")),
    "crime": (("There's a fight outside a bar at {addr}, a few men",
               "A robbery just happened at a phone shop at {addr}",
               "Burglary in progress, someone broke into a flat at {addr}",
               "A man was assaulted near {addr}, the attacker ran off"),
              ("{addr}有人打架, 好几个人", "{addr}刚发生抢劫, 嫌疑人往北跑了",
               "{addr}有人盗窃电动车", "{addr}有人在打架, 快派警察")),
    "gas_leak": (("Strong smell of gas in the stairwell at {addr}",
                  "I think there is a gas leak in the restaurant kitchen at {addr}",
                  "Gas odor in the street near {addr}, it is getting stronger"),
                 ("{addr}楼道里有很大的煤气味", "{addr}燃气管道漏气了",
                  "{addr}天然气味道很重, 怕爆炸")),
    "flood": (("The underpass at {addr} is flooded, cars are stuck in the water",
               "Water on road at {addr}, knee deep and rising",
               "Flooding at {addr}, the drains are overflowing",
               "Street flooded at {addr}, water is coming into the shops"),
              ("{addr}积水很深, 车过不去了", "{addr}内涝严重, 水快到膝盖了",
               "{addr}地下通道被淹了, 有车困在里面", "{addr}路面积水, 还在涨")),
    "hazmat": (("A chemical tanker is leaking at {addr}, people nearby are coughing",
                "Strong chemical smell from the plant at {addr}, my eyes are stinging",
                "Hazmat: yellow vapour drifting from a storage yard at {addr}",
                "Some chemical is spilling out of drums at {addr}"),
               ("{addr}有化学品泄漏, 味道很刺鼻", "{addr}危化品罐车泄漏了, 有黄色烟雾",
                "{addr}化工厂那边泄漏了, 眼睛很疼", "{addr}有刺鼻的化学品气味, 好多人在咳嗽")),
    "structural": (("Part of the old building at {addr} is starting to collapse",
                    "There is a big building crack opening up at {addr}",
                    "A wall has collapsed onto the pavement at {addr}"),
                   ("{addr}有面墙倒塌了", "{addr}的老楼部分坍塌了",
                    "{addr}房子倒塌了, 可能有人被埋")),
    "bridge": (("The bridge at {addr} is sagging and cracking, it could collapse",
                "Concrete is falling off the bridge at {addr}, I think it may collapse"),
               ("{addr}桥面有裂缝, 好像要坍塌", "{addr}桥下掉混凝土块, 怕是要坍塌")),
    "utility_outage": (("Power outage across the whole block at {addr}",
                        "Wires down on the street at {addr}, all the lights are out",
                        "We have had a power outage for an hour at {addr}"),
                       ("{addr}整栋楼停电了", "{addr}突然断电了, 电梯停了",
                        "{addr}这一片都停电了")),
    # false alarms: what a lone caller says when nothing is wrong
    "false_fire": (("I can see smoke over the rooftops near {addr}, maybe something burning",),
                   ("{addr}那边在冒烟, 不知道是不是着火了",)),
    "false_medical": (("A man is lying on a bench at {addr}, he might be unconscious",),
                      ("{addr}有个人躺在路边, 可能晕倒了",)),
    "false_gas_leak": (("Faint smell of gas near {addr}, not sure where from",),
                       ("{addr}好像有点煤气味",)),
    "false_crime": (("I heard what sounded like shots near {addr}",),
                    ("{addr}好像有人打架, 很吵",)),
}
HERE_ZH = "这里"  # a caller's "here", where the place has no Chinese name in the file

WHAT: dict[str, tuple[str, ...]] = {
    "fire": ("Fire in a residential flat", "Kitchen fire in a restaurant", "Fire in a shop",
             "Fire in a storage room"),
    "medical": ("Collapse, unconscious adult", "Cardiac arrest", "Seizure",
                "Breathing difficulty"),
    "traffic": ("Two-car collision with an injury", "Car against an e-bike",
                "Lorry and taxi collision"),
    "crime": ("Street fight", "Robbery at a shop", "Burglary in progress", "Assault"),
    "gas_leak": ("Gas leak in a residential block", "Gas leak in a restaurant kitchen"),
    "flood": ("Flooded underpass with cars stuck", "Street flooding, drains overflowing"),
    "hazmat": ("Chemical leak",),
    "structural": ("Partial collapse of an old building", "Wall collapse"),
    "bridge": ("Bridge girder past its strain limit, deck cracking",),
    "pileup": ("Multi-vehicle pile-up",),
    "utility_outage": ("Power outage", "Power lines down"),
}
FALSE_CALL = {"fire": "Barbecue smoke on a balcony, taken for a fire",
               "medical": "A man asleep on a bench, taken for unconscious",
               "gas_leak": "A drain smell, taken for gas",
               "crime": "Firecrackers and a loud quarrel, taken for a crime"}
FALSE_CAMERA = {"fire": ("smoke", "Steam from a restaurant vent, scored low as smoke"),
                 "crime": ("crowd", "A bus queue, scored low as a crowd"),
                 "medical": ("person_down", "Someone tying a shoelace, scored low as a "
                                            "person down"),
                 "flood": ("water", "A street washer's spray, scored low as water")}
# Labels a camera reports each category by (adapters.video's defaults).
SEEN_AS = {"fire": ("smoke", "fire"), "medical": ("person_down", "fallen_person"),
            "traffic": ("collision", "crash"), "crime": ("crowd",),
            "flood": ("water_on_road", "flood")}
VEHICLES = ("car", "car", "truck", "bus")
CALLERS = {"fire": (2, 5), "medical": (1, 2), "traffic": (1, 4), "crime": (1, 3),
            "gas_leak": (1, 3), "flood": (1, 3), "structural": (1, 3),
            "utility_outage": (2, 5), "hazmat": (3, 6), "pileup": (8, 14)}
PLATFORM = {"medical": "120", "traffic": "122", "crime": "110", "utility_outage": "12345"}
# How likely a real emergency is placed at one of its sensors, or in a camera's view.
AT_DEVICE = {"flood": 0.6, "gas_leak": 0.5, "fire": 0.4, "structural": 0.8, "hazmat": 0.8}
AT_CAMERA = 0.3
DUPLICATE = 0.12  # a caller who rings again
CAMERA_DELAY = {"fire": (15.0, 60.0), "medical": (3.0, 20.0), "traffic": (0.0, 8.0),
                 "crime": (20.0, 90.0), "flood": (30.0, 120.0)}
SENSOR_DELAY = {"fire": (20.0, 90.0), "flood": (0.0, 60.0)}

# Districts of the demo city by station district id: (English, Chinese, roads).
DISTRICTS: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "zhongyuan": ("Zhongyuan District", "中原区", (
        ("Zhongyuan Road", "中原路"), ("Jianshe Road", "建设路"), ("Songshan Road", "嵩山路"),
        ("Tongbai Road", "桐柏路"), ("Funiu Road", "伏牛路"), ("Qinling Road", "秦岭路"))),
    "erqi": ("Erqi District", "二七区", (
        ("Jiefang Road", "解放路"), ("Dehua Street", "德化街"), ("Daxue Road", "大学路"),
        ("Hanghai Road", "航海路"), ("Minzhu Road", "民主路"), ("Jingguang Road", "京广路"))),
    "jinshui": ("Jinshui District", "金水区", (
        ("Jinshui Road", "金水路"), ("Nongye Road", "农业路"), ("Huayuan Road", "花园路"),
        ("Wenhua Road", "文化路"), ("Dongfeng Road", "东风路"), ("Weiwu Road", "纬五路"))),
    "guancheng": ("Guancheng District", "管城区", (
        ("Zijingshan Road", "紫荆山路"), ("Chengdong Road", "城东路"),
        ("Longhai Road", "陇海路"), ("Shangdu Road", "商都路"), ("Nanguan Street", "南关街"))),
    "huiji": ("Huiji District", "惠济区", (
        ("Jiangshan Road", "江山路"), ("Tianhe Road", "天河路"), ("Dahe Road", "大河路"),
        ("Changxing Road", "长兴路"), ("Kaiyuan Road", "开元路"))),
    "zhengdong": ("Zhengdong New District", "郑东新区", (
        ("Shangwu Inner Ring Road", "商务内环路"), ("Jinshui East Road", "金水东路"),
        ("Nongye East Road", "农业东路"), ("Zhongzhou Avenue", "中州大道"),
        ("Xinyi Road", "心怡路"))),
}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马胡朱郭何罗高林"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华"
EN_NAMES = ("Li Na", "Zhang Wei", "Chen Jie", "Liu Yang", "Tom Becker", "Anna Novak",
             "Sam Okafor", "Maria Rossi", "Wang Fang", "Zhao Lei")
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
