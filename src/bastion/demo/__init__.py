"""The demo shop for `bastion demo`: a small Flask app that is vulnerable on purpose.

The app lives in `bastion.demo.shop` (gunicorn: ``"bastion.demo.shop:create_app()"``). It is
not imported here, so that importing this package never needs Flask.
"""
