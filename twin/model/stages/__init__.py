"""The stages of a report's life, one module each, composed by `twin.model.process.CityTwin`.

- `desk`: the kelurahan coordination desk (Menunggu -> Koordinasi).
- `agencies`: reports handed to an agency (OPD).
- `ppsu`: PPSU crews and the desk's check of their proof photos.
- `teams`: the field-team engine (pools, shifts, busy spells) PPSU crews run on.
- `riding`: ride times on the road network and the distance tally.
"""
