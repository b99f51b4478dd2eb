// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import "@openzeppelin/contracts/access/Ownable.sol";

/// A USDC/USDT-like token for the local chain: its own decimals, an owner who mints,
/// and a blacklist that freezes addresses the way USDC and USDT do.
contract StableToken is ERC20, Ownable {
    uint8 private immutable _decimals;
    mapping(address => bool) public isBlacklisted;

    event Blacklisted(address indexed account);
    event UnBlacklisted(address indexed account);

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply, address holder)
        ERC20(name_, symbol_)
    {
        _decimals = decimals_;
        _mint(holder, supply);
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    function blacklist(address account) external onlyOwner {
        isBlacklisted[account] = true;
        emit Blacklisted(account);
    }

    function unBlacklist(address account) external onlyOwner {
        isBlacklisted[account] = false;
        emit UnBlacklisted(account);
    }

    function _beforeTokenTransfer(address from, address to, uint256 amount) internal override {
        require(!isBlacklisted[from], "Blacklistable: account is blacklisted");
        require(!isBlacklisted[to], "Blacklistable: account is blacklisted");
        super._beforeTokenTransfer(from, to, amount);
    }
}
