"""Reference data of the transaction generator: countries, currencies and merchant categories."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    """A merchant country: ISO 3166-1 code, its ISO 4217 currency, units of it per EUR."""

    code: str
    currency: str
    per_eur: float
    home_weight: float


@dataclass(frozen=True)
class Category:
    """A merchant category (ISO 18245 MCC): typical amount and how people pay there."""

    mcc: str
    names: tuple[str, ...]
    weight: float
    median_eur: float
    sigma: float
    # Probabilities of CHANNELS, in order.
    channels: tuple[float, float, float, float, float]


# Home countries carry a weight; the others only see travel and fraud.
COUNTRIES: tuple[Country, ...] = (
    Country("DE", "EUR", 1.0, 0.24),
    Country("FR", "EUR", 1.0, 0.15),
    Country("NL", "EUR", 1.0, 0.08),
    Country("ES", "EUR", 1.0, 0.10),
    Country("IT", "EUR", 1.0, 0.10),
    Country("AT", "EUR", 1.0, 0.04),
    Country("BE", "EUR", 1.0, 0.04),
    Country("IE", "EUR", 1.0, 0.03),
    Country("GB", "GBP", 0.85, 0.13),
    Country("US", "USD", 1.08, 0.09),
    Country("CH", "CHF", 0.95, 0.0),
    Country("PL", "PLN", 4.3, 0.0),
    Country("RO", "RON", 4.97, 0.0),
    Country("BR", "BRL", 5.9, 0.0),
    Country("AE", "AED", 3.97, 0.0),
    Country("SG", "SGD", 1.45, 0.0),
    Country("CA", "CAD", 1.48, 0.0),
    Country("AU", "AUD", 1.65, 0.0),
)

CHANNELS: tuple[str, ...] = ("pos", "contactless", "ecommerce", "atm", "transfer")

CATEGORIES: tuple[Category, ...] = (
    Category("5411", ("Fresh Market", "Corner Grocer", "Green Basket", "Daily Foods"),
             0.22, 34.0, 0.6, (0.45, 0.50, 0.05, 0.0, 0.0)),
    Category("5812", ("Trattoria", "Bistro Central", "The Olive Tree", "Golden Dragon"),
             0.10, 28.0, 0.5, (0.55, 0.45, 0.0, 0.0, 0.0)),
    Category("5814", ("Quick Bite", "Burger Point", "Noodle Bar", "Coffee Corner"),
             0.10, 9.0, 0.4, (0.15, 0.80, 0.05, 0.0, 0.0)),
    Category("5541", ("City Fuel", "Highway Petrol", "Express Gas"),
             0.06, 55.0, 0.3, (0.70, 0.30, 0.0, 0.0, 0.0)),
    Category("5912", ("Health Pharmacy", "Care Apotheke", "Well Chemist"),
             0.05, 18.0, 0.6, (0.40, 0.60, 0.0, 0.0, 0.0)),
    Category("5311", ("Grand Store", "Mega Mart", "Department Plaza"),
             0.04, 60.0, 0.8, (0.60, 0.25, 0.15, 0.0, 0.0)),
    Category("5651", ("Urban Wear", "Denim House", "Style Outlet"),
             0.05, 70.0, 0.7, (0.45, 0.15, 0.40, 0.0, 0.0)),
    Category("5732", ("Tech World", "Gadget Hub", "Electro Center"),
             0.02, 180.0, 0.9, (0.40, 0.05, 0.55, 0.0, 0.0)),
    Category("5942", ("Page Turner", "Book Nook"),
             0.02, 20.0, 0.5, (0.25, 0.10, 0.65, 0.0, 0.0)),
    Category("4121", ("RideNow", "City Cab", "Swift Ride"),
             0.05, 17.0, 0.5, (0.05, 0.05, 0.90, 0.0, 0.0)),
    Category("4111", ("Metro Transit", "City Rail"),
             0.06, 4.0, 0.4, (0.05, 0.90, 0.05, 0.0, 0.0)),
    Category("4511", ("SkyWays", "Blue Air", "Euro Jet"),
             0.01, 250.0, 0.6, (0.0, 0.0, 1.0, 0.0, 0.0)),
    Category("7011", ("Grand Hotel", "City Inn", "Harbour Lodge"),
             0.01, 140.0, 0.6, (0.50, 0.0, 0.50, 0.0, 0.0)),
    Category("5815", ("StreamFlix", "Tune Cloud", "Read More"),
             0.04, 9.0, 0.5, (0.0, 0.0, 1.0, 0.0, 0.0)),
    Category("5816", ("Pixel Games", "Level Up Store"),
             0.02, 15.0, 0.8, (0.0, 0.0, 1.0, 0.0, 0.0)),
    Category("5999", ("Shop Online", "Everything Store", "Bazaar Direct"),
             0.06, 40.0, 0.9, (0.05, 0.05, 0.90, 0.0, 0.0)),
    Category("6011", ("Cash Point", "Bank ATM"),
             0.05, 100.0, 0.6, (0.0, 0.0, 0.0, 1.0, 0.0)),
    Category("4900", ("Power Utility", "Water Works", "Gas Supply"),
             0.02, 80.0, 0.5, (0.0, 0.0, 0.0, 0.0, 1.0)),
    Category("4814", ("Mobile Telecom", "Fibre Net"),
             0.02, 35.0, 0.3, (0.0, 0.0, 0.30, 0.0, 0.70)),
    Category("5944", ("Gold & Gems", "Fine Watches"),
             0.005, 300.0, 0.8, (0.85, 0.0, 0.15, 0.0, 0.0)),
)  # fmt: skip

# Categories that fraud patterns favour.
DIGITAL_MCCS = ("5815", "5816", "5999")
RESALE_MCCS = ("5732", "5944", "5311", "5999")
SPREE_MCCS = ("5651", "5732", "5311", "5999", "5944", "5942")
# Upper bounds (in EUR before FX) so generated amounts stay within plausible per-channel limits.
MAX_AMOUNT_EUR = {"pos": 5_000.0, "contactless": 250.0, "ecommerce": 5_000.0, "atm": 1_000.0}
MAX_TRANSFER_EUR = 10_000.0
